// zpump make FILE... : one .zsync per file, or a note that the file is below the threshold.

import { make, type SignatureFormat } from '../api.js';
import type { StrongHashName } from '../engine/strong-hash.js';
import { exitCodeFor, ZpumpError } from '../errors.js';
import type { EngineChoice } from '../backends/types.js';
import { errorJson, formatBytes, printJson, say, startProgress, warn } from './output.js';

export interface MakeFlags {
  blockSize: number | 'auto';
  budget: number;
  threshold: number;
  force: boolean;
  url?: string;
  output?: string;
  engine: EngineChoice;
  format?: SignatureFormat;
  strongHash?: StrongHashName;
  json: boolean;
}

export async function runMake(files: string[], flags: MakeFlags): Promise<number> {
  if (flags.output !== undefined && files.length !== 1) throw new ZpumpError('E_USAGE', '--output takes one FILE only; with several files each gets FILE.zsync');
  let exitCode = 0;
  for (const input of files) {
    const progress = await startProgress(`signing ${input}`, 1, !flags.json);
    try {
      const result = await make({
        input,
        output: flags.output,
        blockSize: flags.blockSize,
        budget: flags.budget,
        threshold: flags.threshold,
        force: flags.force,
        urls: flags.url === undefined ? undefined : [flags.url],
        engine: flags.engine,
        format: flags.format,
        strongHash: flags.strongHash,
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.stop();
      if (flags.json) printJson(result);
      else if (result.skipped) {
        say(`${input}: ${formatBytes(result.length)} is below the ${formatBytes(result.threshold)} threshold: no signature, send it whole (--force makes one anyway)`);
      } else {
        if (result.fallback) warn(`zsyncmake failed, used the js engine instead: ${result.fallback.reason}`);
        say(`${result.output}: ${result.records} blocks of ${formatBytes(result.blockSize)}, ${formatBytes(result.signatureBytes)} signature for ${formatBytes(result.length)} (${result.engine} engine${result.strongHash ? `, format 0.8, ${result.strongHash} blocks, File-Hash SHA-256` : ''}, ${result.seconds.toFixed(2)} s)`);
      }
    } catch (error) {
      progress.stop();
      exitCode = Math.max(exitCode, exitCodeFor(error));
      if (flags.json) printJson(errorJson(error, { input }));
      else warn(error instanceof Error ? error.message : String(error));
    }
  }
  return exitCode;
}
