// The library face: make() and sync() with plain options → a result object. The CLI is a thin layer over
// this; scripts can import it too. Defaults and thresholds live here, not in the backends.

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withEngine } from './backends/select.js';
import type { EngineChoice, MakeResult, SyncResult } from './backends/types.js';
import { zsyncCanFetch } from './backends/zsync-sync.js';
import { clientCannotRead, type ToolInfo } from './backends/locate.js';
import { ZpumpError, fromSystemError } from './errors.js';
import { checkableIdentity, dataUrlOf, fineSignatureOf, parseAnnouncement, parseV03Time, signatureUrlOf, type Announcement } from './format/announcement.js';
import { ALL_SCHEMES, MAX_REFERENCED_SIGNATURE_BYTES, cappedSize, refuseGzipInside, type UrlRules } from './format/url-policy.js';
import { verifyIdentity } from './local/identity-check.js';
import { parseControlFile, type ControlFile } from './format/control-file.js';
import { readControlFile, writeVerifiedControlFile } from './local/control-file-io.js';
import { readStdin } from './local/stdin.js';
import { autoBlockSize, geometryProblem, isPowerOfTwo, MAX_BLOCK_SIZE } from './format/hash-lengths.js';
import type { OpenOptions } from './transport/open.js';
import { DIGEST_BYTES, type StrongHashName } from './engine/strong-hash.js';

export const DEFAULT_THRESHOLD = 1 << 20;
export const DEFAULT_BUDGET = 64 << 10;
export const MIN_BLOCK_SIZE = 1024;

export interface MakeOptions {
  input: string;
  /** Default: INPUT.zsync */
  output?: string;
  /** A power of two >= 1024, or 'auto' (default): the smallest >= 4 KiB that fits `budget`. */
  blockSize?: number | 'auto';
  budget?: number;
  /** Files smaller than this get no signature (default 1 MiB). */
  threshold?: number;
  force?: boolean;
  /** URL header lines; default: the input's file name, relative. */
  urls?: string[];
  engine?: EngineChoice;
  /** '0.8' writes format spec 0.8 (SHA-256 File-Hash, whole digests) with `strongHash` (default MD4); default '0.6.2'. */
  format?: SignatureFormat;
  strongHash?: StrongHashName;
  /** Also the input's sha512 (MakeResult.sha512) when the js engine makes the signature: one read for both. */
  sha512?: boolean;
  onProgress?: (bytesRead: number, total: number) => void;
}

export type SignatureFormat = '0.6.2' | '0.8';

export type MakeOutcome =
  | (MakeResult & { input: string; skipped: false; seconds: number })
  | { input: string; skipped: true; reason: 'below-threshold'; length: number; threshold: number; seconds: number };

export async function make(options: MakeOptions): Promise<MakeOutcome> {
  const started = performance.now();
  const seconds = (): number => Math.round(performance.now() - started) / 1000;
  const input = options.input;
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  let length: number;
  try {
    const st = await stat(input);
    if (!st.isFile()) throw new ZpumpError('E_BAD_INPUT', `${input} is not a regular file`, { data: { path: input } });
    length = st.size;
  } catch (error) {
    throw fromSystemError(error, 'cannot make a signature', input);
  }
  if (length < threshold && !options.force) {
    return { input, skipped: true, reason: 'below-threshold', length, threshold, seconds: seconds() };
  }
  const spec08 = options.format === '0.8' || options.strongHash !== undefined;
  // Spec 0.8 records keep 4 weak bytes and the whole digest: auto sizes blocks for that.
  const fixedRecord = spec08 ? 4 + DIGEST_BYTES[options.strongHash ?? 'MD4'] : undefined;
  const blockSize = resolveBlockSize(options.blockSize ?? 'auto', length, options.budget ?? DEFAULT_BUDGET, fixedRecord);
  if (options.strongHash !== undefined && options.format === '0.6.2') throw new ZpumpError('E_USAGE', 'usage: --strong-hash needs format 0.8 (make --format 0.8, announce/watch --signature-format 0.8): zsync 0.6.2\'s format has MD4 only');
  // zsyncmake 0.6.2 writes its own format only; spec 0.8 files come from the js engine.
  if (spec08 && options.engine === 'zsync') throw new ZpumpError('E_USAGE', 'usage: --format 0.8 is written by the js engine (--engine js or auto); zsyncmake 0.6.2 cannot write it');
  const request = {
    input,
    output: options.output ?? `${input}.zsync`,
    blockSize,
    urls: options.urls ?? [basename(input)],
    filename: basename(input),
    onProgress: options.onProgress,
    ...(spec08 ? { strongHash: options.strongHash ?? 'MD4' } : {}),
    ...(options.sha512 ? { sha512: true } : {}),
  };
  const result = await withEngine(spec08 ? 'js' : options.engine ?? 'auto', 'zsyncmake', (backend) => backend.make(request));
  return { ...result, input, skipped: false, seconds: seconds() };
}

export function resolveBlockSize(choice: number | 'auto', length: number, budget: number, fixedRecord?: number): number {
  if (choice === 'auto') return autoBlockSize(length, budget, fixedRecord);
  if (!isPowerOfTwo(choice) || choice < MIN_BLOCK_SIZE || choice > MAX_BLOCK_SIZE) {
    throw new ZpumpError('E_USAGE', `usage: block size must be a power of two from ${MIN_BLOCK_SIZE} bytes to 64 MiB (e.g. 64k, 1M), got ${choice}`);
  }
  const problem = geometryProblem(length, choice);
  if (problem) throw new ZpumpError('E_USAGE', `usage: ${problem}`);
  return choice;
}

export interface SyncOptions {
  /** Path or http(s) URL of a .zsync, or an announcement (a .json file, - for stdin, or one already parsed). */
  control: string | Announcement;
  /** Default: the control file's Filename, in the current directory. */
  target?: string;
  /** Extra local files to reuse blocks from (the target itself is always used when it exists). */
  seeds?: string[];
  /** Where to fetch the data; default: the control file's URL, resolved against its location. */
  url?: string;
  engine?: EngineChoice;
  /** CA certificates for https, keys and host checks for sftp. */
  transport?: OpenOptions;
  /** Resolve relative URLs against this instead of the control file's location (zsync -u). */
  baseUrl?: string;
  /** Also keep the control file here (zsync -k). */
  saveControlAs?: string;
  /** Schemes an announcement's URLs may use (default: all zpump reads; the subscriber narrows it). */
  schemes?: readonly string[];
  /** Take an announcement whose identity zpump cannot check (none, unknown methods) unchecked. */
  acceptUnverified?: boolean;
  /** Called with the finished, verified temporary file right before it is renamed over the target. */
  beforeCommit?: (tempPath: string) => Promise<void>;
  /** Threads scanning the seeds (js engine); default: one per core; 1: this thread only. */
  threads?: number;
  /** A two-level message's fine signature, whole and checked against its identity (pump/signature-reuse.ts): no record fetched again. */
  fineControl?: ControlFile;
  onProgress?: (phase: 'scan' | 'fetch', done: number, total: number) => void;
}

export type SyncOutcome = SyncResult & { seconds: number; dataUrl: string };

export async function sync(options: SyncOptions): Promise<SyncOutcome> {
  const started = performance.now();
  const done = <T extends SyncResult>(result: T, dataUrl: string): SyncOutcome => ({ ...result, dataUrl: result.servedBy ?? dataUrl, seconds: Math.round(performance.now() - started) / 1000 });
  const rules: UrlRules = { schemes: options.schemes ?? ALL_SCHEMES };
  const source = await loadControl(options.control, options.transport, rules);
  const message = source.announcement;
  // Refused before anything is fetched: a file nobody can check is taken only when asked for.
  const identity = message ? checkableIdentity(message.identity, options.acceptUnverified) : undefined;
  const beforeCommit = identity?.method === 'md5' || options.beforeCommit
    ? async (tempPath: string) => {
        if (identity?.method === 'md5') await verifyIdentity(tempPath, identity, target);
        await options.beforeCommit?.(tempPath);
      }
    : undefined;
  if (source.bytes && options.saveControlAs) await writeVerifiedControlFile(options.saveControlAs, async (h) => { await h.writeFile(source.bytes!); });
  const target = options.target ?? defaultTarget(message ? basename(message.relPath) : source.control?.filename);
  // A gzip-inside file names its (compressed) data in Z-URL: lines; only zsync 0.6.x reads it.
  const listed = source.control ? (source.control.gzip && source.control.urls.length === 0 ? source.control.gzip.zUrls : source.control.urls) : [];
  const dataUrl = message && !options.url ? dataUrlOf(message, rules) : resolveDataUrl(options.url ?? listed[0], options.baseUrl ?? source.location);
  // Each URL: line is a mirror, tried in turn; --url and an announcement name one place only.
  const dataUrls = message || options.url ? [dataUrl] : listed.map((u) => resolveDataUrl(u, options.baseUrl ?? source.location));
  const seeds = await existingSeeds(target, options.seeds ?? []);
  const control = source.control;
  const mtime = message?.mtime === undefined ? control?.mtime : (parseV03Time(message.mtime) ?? NaN) / 1000;
  if (message && (!control || seeds.length === 0)) {
    // No signature, or nothing local to compare it with: fetch whole, verify the identity, rename.
    const { wholeDownload } = await import('./backends/whole-download.js');
    const result = await wholeDownload({ dataUrl, target, size: message.size, identity, beforeCommit: options.beforeCommit, mtime: Number.isFinite(mtime) ? mtime : undefined, transport: options.transport, onProgress: options.onProgress });
    return done(result, dataUrl);
  }
  if (!control) throw new ZpumpError('E_INTERNAL', 'no control file loaded');
  if (message && control.length !== message.size) {
    throw new ZpumpError('E_BAD_MESSAGE', `bad announcement: its signature describes ${control.length} bytes but size says ${message.size}`);
  }
  const sha512 = identity?.method === 'sha512' ? identity.value : undefined;
  const request = {
    control, controlLocation: source.location, dataUrl, dataUrls, target, seeds, transport: options.transport, onProgress: options.onProgress,
    sha512, beforeCommit, mtime: message && Number.isFinite(mtime) ? mtime : undefined, threads: options.threads,
    ...(identity?.method === 'md5' ? { md5InBeforeCommit: true } : {}),
  };
  // A two-level message: the js engine's two-level path (README "Two-level sync"), unless zsync is asked for.
  const fine = message ? fineSignatureOf(message, rules) : undefined;
  if (fine && 'url' in fine && options.engine !== 'zsync') {
    const { twoLevelSync } = await import('./backends/two-level-sync.js');
    const result = await twoLevelSync({
      ...request, fine: { url: fine.url, size: fine.size, blockSize: fine.blockSize }, size: message!.size, ...(identity ? { identity } : {}),
      ...(options.fineControl ? { fineWhole: options.fineControl } : {}),
    });
    return done(result, dataUrl);
  }
  const canUseZsync = (tool: ToolInfo): boolean => dataUrls.some(zsyncCanFetch) && control.length > 0 && !clientCannotRead(tool, control);
  const result = await withEngine(options.engine ?? 'auto', 'zsync', (backend) => backend.sync(request), canUseZsync);
  return done(result, dataUrl);
}

async function existingSeeds(target: string, extra: string[]): Promise<string[]> {
  const seeds: string[] = [];
  for (const seed of [target, ...extra]) {
    try {
      const st = await stat(seed);
      if (!st.isFile()) throw new ZpumpError('E_BAD_INPUT', `seed ${seed} is not a regular file`);
      if (!seeds.includes(seed)) seeds.push(seed);
    } catch (error) {
      if (seed === target && (error as NodeJS.ErrnoException).code === 'ENOENT') continue; // a first download
      throw fromSystemError(error, 'cannot use the seed', seed);
    }
  }
  return seeds;
}

const isUrl = (s: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

interface LoadedControl {
  control?: ControlFile;
  bytes?: Uint8Array;
  location: string;
  announcement?: Announcement;
}

async function fetchBytes(url: string, transport: OpenOptions | undefined, maxBytes?: number): Promise<{ bytes: Uint8Array; finalUrl: string }> {
  const { fetchDocument } = await import('./transport/http.js');
  const { httpOptionsFrom } = await import('./transport/open.js');
  return fetchDocument(url, { ...httpOptionsFrom(transport), ...(maxBytes === undefined ? {} : { maxBytes }) });
}

function parseFrom(bytes: Uint8Array, where: string): ControlFile {
  try {
    return parseControlFile(bytes);
  } catch (error) {
    if (error instanceof ZpumpError) error.message = `${where}: ${error.message}`;
    throw error;
  }
}

/** A referenced .zsync over a range transport (sftp): its size comes from the message, capped before the buffer is made. */
async function readWholeOver(url: string, size: number | undefined, transport?: OpenOptions): Promise<Uint8Array> {
  if (size === undefined) throw new ZpumpError('E_BAD_MESSAGE', `bad announcement: the signature at ${url} is referenced without its size`);
  cappedSize(size, MAX_REFERENCED_SIGNATURE_BYTES, 'zsync.size');
  const { openRangeSource } = await import('./transport/open.js');
  const source = await openRangeSource(url, transport);
  const bytes = new Uint8Array(size);
  try {
    await source.readRanges([{ start: 0, end: size }], (chunk) => {
      if (chunk.offset + chunk.data.length > size) throw new ZpumpError('E_BAD_CONTROL', `${url} sent more than the ${size} bytes announced`);
      bytes.set(chunk.data, chunk.offset);
    });
  } finally {
    await source.close();
  }
  return bytes;
}

async function loadControl(where: string | Announcement, transport: OpenOptions | undefined, rules: UrlRules): Promise<LoadedControl> {
  if (typeof where !== 'string' || where === '-' || /\.json$/i.test(where)) {
    const announcement = typeof where !== 'string' ? where : parseAnnouncement(where === '-' ? await readStdin() : await readSmallFile(where));
    const loaded: LoadedControl = { location: dataUrlOf(announcement, rules), announcement };
    if (announcement.zsync?.kind === 'inline') {
      loaded.bytes = announcement.zsync.bytes;
      loaded.control = parseFrom(loaded.bytes, `${typeof where === 'string' ? where : where.relPath} (inline signature)`);
    } else if (announcement.zsync?.kind === 'reference') {
      // The one URL check (scheme, under baseUrl once decoded), and no read past the cap.
      const url = signatureUrlOf(announcement, rules)!;
      const announced = announcement.zsync.size;
      const limit = announced === undefined ? MAX_REFERENCED_SIGNATURE_BYTES : cappedSize(announced, MAX_REFERENCED_SIGNATURE_BYTES, 'zsync.size');
      const bytes = /^https?:/.test(url)
        ? (await fetchBytes(url, transport, limit)).bytes
        : /^sftp:/.test(url)
          ? await readWholeOver(url, announced, transport)
          : await readBoundedFile(fileURLToPath(url), limit);
      loaded.bytes = bytes;
      loaded.control = parseReferenced(bytes, url);
    }
    if (loaded.control) refuseGzipInside(loaded.control, announcement.relPath);
    return loaded;
  }
  if (/^https?:\/\//i.test(where)) {
    const { bytes, finalUrl } = await fetchBytes(where, transport);
    return { control: parseFrom(bytes, finalUrl), location: finalUrl, bytes };
  }
  const path = where.startsWith('file://') ? fileURLToPath(where) : where;
  return { ...(await readControlFile(path)), location: path };
}

/**
 * A signature a message points at: its parse error never quotes the content (a hostile message
 * could point at a local secret and read it back from the log).
 */
function parseReferenced(bytes: Uint8Array, url: string): ControlFile {
  try {
    return parseControlFile(bytes);
  } catch (error) {
    if (!(error instanceof ZpumpError)) throw error;
    throw new ZpumpError(error.code, `${url}: not a usable .zsync signature (${bytes.length} bytes read; content not shown)`);
  }
}

/** A local file read up to `limit` bytes: /dev/zero or a FIFO named by a message cannot fill memory. */
async function readBoundedFile(path: string, limit: number): Promise<Uint8Array> {
  const { open, constants } = await import('node:fs/promises');
  let handle;
  try {
    // Non-blocking: a FIFO named by a message must not hang the open until some writer appears.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw fromSystemError(error, 'cannot read', path);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new ZpumpError('E_BAD_INPUT', `${path} is not a regular file`);
    const buf = new Uint8Array(Math.min(limit, st.size) + 1);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > limit) throw new ZpumpError('E_BAD_CONTROL', `${path} is larger than the ${limit} bytes announced`);
    return buf.subarray(0, filled);
  } catch (error) {
    throw fromSystemError(error, 'cannot read', path);
  } finally {
    await handle.close();
  }
}

async function readSmallFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw fromSystemError(error, 'cannot read', path);
  }
}

function defaultTarget(filename: string | undefined): string {
  if (!filename || filename.includes('/') || filename === '.' || filename === '..') {
    throw new ZpumpError('E_USAGE', `give TARGET: the control file's Filename ${filename === undefined ? 'is missing' : `(${JSON.stringify(filename)}) is not a plain file name`}`);
  }
  return filename;
}

/** Relative URLs resolve against the control file's own URL, or its folder when it is local. */
function resolveDataUrl(url: string | undefined, location: string): string {
  if (url === undefined) throw new ZpumpError('E_USAGE', 'the control file has no URL header: give --url to say where the data is');
  if (isUrl(url)) return url;
  if (isUrl(location)) return new URL(url, location).href;
  return resolve(dirname(location), url);
}
