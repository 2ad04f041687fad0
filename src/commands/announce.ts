// zpump announce FILE... : one announcement per file, posted to a sink (stdout by default).

import { resolve } from 'node:path';
import type { EngineChoice } from '../backends/types.js';
import type { SignatureFormat } from '../api.js';
import type { StrongHashName } from '../engine/strong-hash.js';
import { exitCodeFor, ZpumpError } from '../errors.js';
import { announceFile } from '../pump/announce.js';
import { openSink } from '../pump/bus/open.js';
import type { Announced } from '../pump/announce.js';
import type { MessageFormat } from '../pump/message.js';
import { signatureDirOf } from '../pump/two-level.js';
import { errorJson, formatBytes, printJson, warn } from './output.js';

export interface PublishFlags {
  baseUrl: string;
  root?: string;
  post: string;
  writeZsync: boolean;
  blockSize: number | 'auto';
  budget?: number;
  threshold: number;
  inlineLimit: number;
  engine: EngineChoice;
  signatureFormat?: SignatureFormat;
  strongHash?: StrongHashName;
  exchange: string;
  json: boolean;
  format: MessageFormat;
  dataIdPrefix?: string;
  geometry?: unknown;
  topic?: string;
  levels?: '1' | '2';
  messageLimit?: number;
  fineBlockSize?: number;
  signatureDir?: string;
  signatureUrl?: string;
}

export function publishOptions(flags: PublishFlags) {
  if (flags.json && flags.post === '-') throw new ZpumpError('E_USAGE', '--json and --post - both want stdout: post to spool:DIR or a broker, or drop --json');
  return {
    root: resolve(flags.root ?? '.'),
    baseUrl: normaliseBaseUrl(flags.baseUrl),
    threshold: flags.threshold,
    blockSize: flags.blockSize,
    budget: flags.budget,
    engine: flags.engine,
    signatureFormat: flags.signatureFormat,
    strongHash: flags.strongHash,
    inlineLimit: flags.inlineLimit,
    writeZsync: flags.writeZsync,
    format: flags.format,
    dataIdPrefix: flags.dataIdPrefix,
    geometry: flags.geometry,
    ...twoLevelOptions(flags),
  };
}

/** --levels, --message-limit, --fine-block-size, --signature-dir/--signature-url (pump/two-level.ts). */
function twoLevelOptions(flags: PublishFlags) {
  const levels = flags.levels === '1' ? 1 : 2;
  if (levels === 1 && (flags.fineBlockSize !== undefined || flags.signatureDir !== undefined)) {
    throw new ZpumpError('E_USAGE', '--fine-block-size and --signature-dir are for two-level signatures: drop --levels 1');
  }
  if (flags.signatureUrl !== undefined && flags.signatureDir === undefined) throw new ZpumpError('E_USAGE', '--signature-url says where --signature-dir is served: give --signature-dir DIR too');
  const fine = flags.fineBlockSize;
  if (fine !== undefined && (fine < 1024 || fine > 64 << 20 || (fine & (fine - 1)) !== 0)) throw new ZpumpError('E_USAGE', `--fine-block-size must be a power of two from 1k to 64M, got ${fine}`);
  if (levels === 2 && flags.engine === 'zsync') throw new ZpumpError('E_USAGE', 'two-level signatures are made by the js engine (one read of the file gives both levels and the identity): --engine zsync needs --levels 1');
  const root = resolve(flags.root ?? '.');
  return {
    levels: levels as 1 | 2,
    ...(flags.messageLimit !== undefined ? { messageLimit: flags.messageLimit } : {}),
    ...(fine !== undefined ? { fineBlockSize: fine } : {}),
    // Checked here once (a usage error before anything is read), and again by the builder.
    ...(flags.signatureDir !== undefined ? { signatureDir: signatureDirOf(root, normaliseBaseUrl(flags.baseUrl), flags.signatureDir, flags.signatureUrl).dir, ...(flags.signatureUrl !== undefined ? { signatureUrl: flags.signatureUrl } : {}) } : {}),
  };
}

const BASE_URL_SCHEMES = ['http', 'https', 'sftp', 'file'];

/** --base-url as Sarracenia writes baseUrl: absolute, with no trailing slash (subscribers join it
 *  to relPath with exactly one); anything a subscriber would refuse is a usage error here. */
export function normaliseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ZpumpError('E_USAGE', `--base-url ${JSON.stringify(text)} is not a URL: give an absolute URL such as http://data.example.org/data`);
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!BASE_URL_SCHEMES.includes(scheme)) throw new ZpumpError('E_USAGE', `--base-url ${text}: subscribers fetch over ${BASE_URL_SCHEMES.join(', ')}, not ${scheme}:`);
  if (url.search !== '' || url.hash !== '') throw new ZpumpError('E_USAGE', `--base-url ${text}: no ? or # part (relPath is appended to it)`);
  return text.replace(/\/+$/, '');
}

export function describeAnnounced(a: Announced, where: string): string {
  const m = a.message;
  const fine = a.levels?.fineBlockSize !== undefined ? `, fine ${formatBytes(a.levels.fineBlockSize)} blocks in ${a.levels.finePath}` : '';
  const coarse = a.levels?.fineBlockSize !== undefined ? `coarse ${formatBytes(a.levels.coarseBlockSize)} blocks ` : '';
  const sig = a.signature === 'none' ? 'no signature (below the threshold: fetched whole)' : a.signature === 'inline' ? `${coarse}signature inline (${formatBytes(m.zsync?.kind === 'inline' ? m.zsync.bytes.length : 0)})${fine}` : `${coarse}signature by reference (${a.levels?.coarsePath ?? a.zsyncPath})${fine}`;
  const renamed = typeof m.fileOp?.rename === 'string' ? `, renamed from ${m.fileOp.rename}` : '';
  return `announced ${m.relPath} (${formatBytes(m.size)}, ${sig}${renamed}) to ${where} in ${a.seconds.toFixed(2)} s`;
}

export async function runAnnounce(files: string[], flags: PublishFlags): Promise<number> {
  const options = publishOptions(flags);
  const sink = await openSink(flags.post, { exchange: flags.exchange, topic: flags.topic, maxAttempts: 5, log: warn });
  let exitCode = 0;
  try {
    // Once the broker stayed out of reach for one file, the others would wait just as long each.
    let unreachable: ZpumpError | undefined;
    for (const file of files) {
      try {
        if (unreachable) throw new ZpumpError('E_BUS', `not announced: ${unreachable.message}`);
        const result = await announceFile(sink, resolve(file), options);
        if (flags.json) printJson({ file, relPath: result.message.relPath, size: result.message.size, signature: result.signature, zsyncPath: result.zsyncPath, ...(result.levels ? { levels: result.levels } : {}), engine: result.engine, seconds: result.seconds, sink: sink.where });
        else warn(describeAnnounced(result, sink.where));
      } catch (error) {
        if (!unreachable && error instanceof ZpumpError && error.data.connectivity === true) unreachable = error;
        exitCode = Math.max(exitCode, exitCodeFor(error));
        if (flags.json) printJson(errorJson(error, { file }));
        warn(`${file}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await sink.close();
  }
  return exitCode;
}
