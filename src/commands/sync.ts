// zpump sync CONTROL [TARGET]: bring TARGET up to date with what the .zsync describes.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sync } from '../api.js';
import { ZpumpError } from '../errors.js';
import type { EngineChoice } from '../backends/types.js';
import { transportFrom, type TransportFlags } from './transport-flags.js';
import { formatBytes, printJson, progressMaker, say, warn, type Progress } from './output.js';

export interface SyncFlags extends TransportFlags {
  seed: string[];
  url?: string;
  engine: EngineChoice;
  json: boolean;
  acceptUnverified?: boolean;
  threads?: number;
}

export async function runSync(control: string, target: string | undefined, flags: SyncFlags): Promise<number> {
  // Said here because the engine would take the folder for a seed and call it one.
  if (target !== undefined && (await stat(target).catch(() => undefined))?.isDirectory()) {
    throw new ZpumpError('E_USAGE', `TARGET ${target} is a directory: give the path of the file to write (e.g. ${join(target, 'NAME')})`);
  }
  const transport = await transportFrom(flags);
  const startBar = await progressMaker(!flags.json);
  let bar: Progress | undefined;
  let phase = '';
  const result = await sync({
    control, target, seeds: flags.seed, url: flags.url, engine: flags.engine, acceptUnverified: flags.acceptUnverified === true,
    transport, threads: flags.threads,
    onProgress: (p, done, total) => {
      if (p !== phase) {
        bar?.stop();
        phase = p;
        bar = startBar(p === 'scan' ? 'scanning local data' : 'fetching changed blocks', total);
      }
      bar?.update(done, total);
    },
  }).finally(() => bar?.stop());
  if (flags.json) {
    printJson(result);
    return 0;
  }
  if (result.fallback) warn(`zsync failed, used the js engine instead: ${result.fallback.reason}`);
  say(`${result.target}: ${formatBytes(result.length)} in place, ${formatBytes(result.bytesReused)} reused, ${formatBytes(result.bytesFetched)} fetched${result.requests === null ? '' : ` in ${result.requests} requests`} from ${result.dataUrl} (${result.engine} engine, ${result.seconds.toFixed(2)} s, ${result.verified ? 'whole file verified' : 'no whole-file hash zpump can check in the control file: blocks verified only'})`);
  return 0;
}
