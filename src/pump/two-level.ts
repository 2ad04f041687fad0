// The publisher's side of two-level signatures (DESIGN.md "Two levels", issue 12): a fine .zsync
// (zsyncmake's block size, or --fine-block-size) written beside the file or under
// --signature-dir, and a coarse .zsync whose block size is the smallest power of two that lets
// the whole rendered message fit --message-limit. Both levels, the SHA-1 and the sha512
// identity come from one read of the file (issue 13: signature-reader feeds every hash from the
// same buffers). The block sizes are planned before the read, from the length alone: every field
// of the message has a known width except the hashes, which are stood in for by placeholders of
// their exact length.

import { createHash } from 'node:crypto';
import { createReadStream, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute as isAbsolutePath, join, relative as relativePath, resolve as resolvePath, sep } from 'node:path';
import { DIGEST_BYTES, type StrongHashName } from '../engine/strong-hash.js';
import { ZpumpError, fromSystemError } from '../errors.js';
import { renderAnnouncement, v03Time, type Announcement, type FineSignature, type ZsyncField } from '../format/announcement.js';
import { parseControlFileHeader, renderControlFile, type ControlFile } from '../format/control-file.js';
import { blockCount, geometryProblem, MAX_BLOCK_SIZE, spec08HashLengths, zsyncmakeDefaultBlockSize, zsyncmakeHashLengths, type HashLengths } from '../format/hash-lengths.js';
import { SPEC08_GENERATOR } from '../backends/js.js';
import { createTempFile, type TempFile } from '../local/atomic-file.js';
import { readSignatures, type MultiSignature } from '../local/signature-reader.js';

/** The whole-message cap `announce` and `watch` size the coarse signature for: WIS2's 8 192 bytes. */
export const DEFAULT_PUBLISH_MESSAGE_LIMIT = 8 << 10;
/** The smallest coarse block size (the engines' minimum). */
const MIN_COARSE_BLOCK_SIZE = 1024;
/** A coarse signature that travels by reference anyway is sized like today's one-level signatures. */
const REFERENCED_COARSE_BUDGET = 64 << 10;

export interface TwoLevelOptions {
  /** Whole rendered message, all fields included (v03 or WIS2), at most this many bytes. */
  messageLimit: number;
  /** Also keep the base64 of the inline signature within this (--inline-limit when given). */
  inlineLimit?: number;
  /** Fine block size; default zsyncmake's (2048 below 100 000 000 bytes, else 4096). */
  fineBlockSize?: number;
  /** A fixed coarse block size (-b); default: the smallest that fits. */
  coarseBlockSize?: number;
  /** Spec 0.8 signatures with this block hash (default: zsync 0.6.2's format, MD4). */
  strongHash?: StrongHashName;
  /** Where the fine signature goes: a folder standing for baseUrl's (default: beside the file). */
  signatureDir?: { dir: string; urlPath: string };
  /** Also write FILE.zsync beside the file when the fine signature sits elsewhere or there is one level. */
  writeZsync?: boolean;
}

export interface LevelPlan {
  length: number;
  /** Absent: one level (the signature that fits inline is already as fine as the fine one). */
  fine?: { blockSize: number; hashLengths: HashLengths; bytes: number; path: string; retrievePath: string };
  coarse: { blockSize: number; hashLengths: HashLengths; bytes: number; inline: boolean; path?: string; retrievePath?: string };
}

export interface TwoLevelResult {
  zsync: ZsyncField;
  identity: string;
  plan: LevelPlan;
  /** Files written, fine first. */
  written: string[];
}

const SHA512_PLACEHOLDER = 'A'.repeat(88);

function hashLengthsFor(length: number, blockSize: number, strongHash: StrongHashName | undefined): HashLengths {
  return strongHash ? spec08HashLengths(length, DIGEST_BYTES[strongHash]) : zsyncmakeHashLengths(length, blockSize);
}

/** The .zsync for a level, as zsyncmake 0.6.2 (or upstream 0.7+ for spec 0.8) writes it. */
function controlFor(level: { blockSize: number; hashLengths: HashLengths; records: Uint8Array }, whole: { length: number; mtime: number; sha1?: string; sha256?: string }, name: string, url: string, strongHash: StrongHashName | undefined): ControlFile {
  const control: ControlFile = {
    zsyncVersion: '0.6.2',
    filename: name,
    mtime: whole.mtime,
    blockSize: level.blockSize,
    length: whole.length,
    hashLengths: level.hashLengths,
    urls: [url],
    extraHeaders: [],
    records: level.records,
  };
  if (!strongHash) return { ...control, sha1: whole.sha1 ?? '0'.repeat(40) };
  return { ...control, zsyncVersion: SPEC08_GENERATOR, safe: strongHash === 'MD4' ? 'File-Hash,Strong-Hash-Algorithm' : 'File-Hash', strongHash, fileHash: { algorithm: 'SHA-256', hex: whole.sha256 ?? '0'.repeat(64) } };
}

/** Exact bytes of a level's .zsync: the header with placeholders of the real widths, plus the records. */
function controlBytes(length: number, mtime: number, blockSize: number, hashLengths: HashLengths, name: string, url: string, strongHash: StrongHashName | undefined): number {
  const header = renderControlFile(controlFor({ blockSize, hashLengths, records: new Uint8Array(0) }, { length, mtime }, name, url, strongHash)).length;
  return header + blockCount(length, blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes);
}

/** Where the sidecars of `path` (relPath under baseUrl) go, on disk and under baseUrl. */
export function sidecarOf(path: string, relPath: string, options: Pick<TwoLevelOptions, 'signatureDir'>, suffix = '.zsync'): { path: string; retrievePath: string } {
  if (!options.signatureDir) return { path: `${path}${suffix}`, retrievePath: `${relPath}${suffix}` };
  const { dir, urlPath } = options.signatureDir;
  return { path: join(dir, ...relPath.split('/')) + suffix, retrievePath: (urlPath ? `${urlPath}/` : '') + relPath + suffix };
}

/** The sidecars a two-level publication may leave for `path`: the fine FILE.zsync and a coarse one sent by reference. */
export function sidecarsOf(path: string, relPath: string, options: Pick<TwoLevelOptions, 'signatureDir'>): string[] {
  return [sidecarOf(path, relPath, options).path, sidecarOf(path, relPath, options, '.coarse.zsync').path];
}

/**
 * Block sizes and forms for a file of `length` bytes, decided before it is read: `template` is
 * the message as it will be (every field but the signature and the hashes).
 */
export function planLevels(template: Announcement, path: string, length: number, mtime: number, options: TwoLevelOptions): LevelPlan {
  const name = basename(path);
  const relPath = template.retrievePath ?? template.relPath;
  const fineUrl = options.signatureDir ? dataUrlFor(template) : name;
  const strong = options.strongHash;
  let fineBlockSize = options.fineBlockSize ?? zsyncmakeDefaultBlockSize(length);
  if (options.fineBlockSize !== undefined) {
    const problem = geometryProblem(length, fineBlockSize);
    if (problem) throw new ZpumpError('E_USAGE', `usage: --fine-block-size: ${problem}`);
  }
  // More fine blocks than the engines hold (files over 128 GiB): the smallest size that works.
  while (geometryProblem(length, fineBlockSize) && fineBlockSize < MAX_BLOCK_SIZE) fineBlockSize *= 2;
  const sizeOf = (blockSize: number, url = name): number => controlBytes(length, mtime, blockSize, hashLengthsFor(length, blockSize, strong), name, url, strong);
  const fits = (zsync: ZsyncField, base64Bytes?: number): boolean => {
    // Cheap refusals first: a signature whose base64 alone is over the limit is never rendered.
    if (base64Bytes !== undefined && (base64Bytes > options.messageLimit || (options.inlineLimit !== undefined && base64Bytes > options.inlineLimit))) return false;
    return Buffer.byteLength(renderAnnouncement({ ...template, pubTime: v03Time(Date.now()), identity: { method: 'sha512', value: SHA512_PLACEHOLDER }, zsync })) <= options.messageLimit;
  };
  const inline = (bytes: number, blockSize: number, fine?: FineSignature): ZsyncField => ({ kind: 'inline', bytes: new Uint8Array(bytes), blockSize, ...(fine ? { fine } : {}) });
  const b64 = (bytes: number): number => Math.ceil(bytes / 3) * 4;
  const level = (blockSize: number, url = name) => ({ blockSize, hashLengths: hashLengthsFor(length, blockSize, strong), bytes: sizeOf(blockSize, url) });

  // One level when the signature at the fine block size fits inline by itself (or -b asks for no coarser one).
  const single = options.coarseBlockSize !== undefined && options.coarseBlockSize <= fineBlockSize ? options.coarseBlockSize : fineBlockSize;
  if (options.coarseBlockSize === undefined || options.coarseBlockSize <= fineBlockSize) {
    const one = level(single);
    if (fits(inline(one.bytes, single), b64(one.bytes))) return { length, coarse: { ...one, inline: true } };
    if (options.coarseBlockSize !== undefined) {
      // A fixed small -b that does not fit: by reference, as one level always did.
      const ref = sidecarOf(path, relPath, options);
      return { length, coarse: { ...level(single, fineUrl), inline: false, ...ref } };
    }
  }
  const fineSide = sidecarOf(path, relPath, options);
  const fine = { ...level(fineBlockSize, fineUrl), ...fineSide };
  const fineField: FineSignature = { retrievePath: fine.retrievePath, size: fine.bytes, blockSize: fineBlockSize, identity: { method: 'sha512', value: SHA512_PLACEHOLDER } };
  const candidates: number[] = [];
  if (options.coarseBlockSize !== undefined) candidates.push(options.coarseBlockSize);
  else for (let b = Math.max(MIN_COARSE_BLOCK_SIZE, fineBlockSize * 2); b <= MAX_BLOCK_SIZE; b *= 2) candidates.push(b);
  for (const blockSize of candidates) {
    const coarse = level(blockSize);
    if (fits(inline(coarse.bytes, blockSize, fineField), b64(coarse.bytes))) return { length, fine, coarse: { ...coarse, inline: true } };
  }
  // Not even the largest blocks fit (a huge file, a long path, a small limit): the coarse level by reference too.
  let blockSize = options.coarseBlockSize ?? fineBlockSize * 2;
  if (options.coarseBlockSize === undefined) while (blockSize < MAX_BLOCK_SIZE && sizeOf(blockSize) > REFERENCED_COARSE_BUDGET) blockSize *= 2;
  const coarseSide = sidecarOf(path, relPath, options, '.coarse.zsync');
  const coarse = { ...level(blockSize, fineUrl), inline: false, ...coarseSide };
  const reference: ZsyncField = { kind: 'reference', retrievePath: coarseSide.retrievePath, size: coarse.bytes, identity: { method: 'sha512', value: SHA512_PLACEHOLDER }, blockSize, fine: fineField };
  if (!fits(reference)) {
    throw new ZpumpError('E_USAGE', `the message for ${template.relPath} does not fit --message-limit ${options.messageLimit} even with both signatures by reference: raise the limit or shorten the path`);
  }
  return { length, fine, coarse };
}

function dataUrlFor(a: Announcement): string {
  return `${a.baseUrl.replace(/\/+$/, '')}/${(a.retrievePath ?? a.relPath).split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Plan, read the file once, write the sidecars (atomically, verified) and return the zsync field.
 * The caller posts the message only after this returns, so a subscriber never meets a message
 * whose fine signature is not there yet.
 */
export async function buildTwoLevels(template: Announcement, path: string, length: number, mtimeMs: number, options: TwoLevelOptions): Promise<TwoLevelResult> {
  const mtime = Math.floor(mtimeMs / 1000);
  const plan = planLevels(template, path, length, mtime, options);
  const strong = options.strongHash;
  const name = basename(path);
  const url = options.signatureDir ? dataUrlFor(template) : name;
  const fineLevel = plan.fine;
  // The fine records go straight into the fine file's temporary, after a header of known length
  // written last (it carries the SHA-1): memory stays flat at any file size (64 GiB: 128 MB of records).
  const fineFile = fineLevel ? await StreamedSidecar.open(fineLevel.path, fineLevel.bytes - recordBytesOf(length, fineLevel)) : undefined;
  let sig: MultiSignature;
  try {
    sig = await readSignatures(path, {
      levels: [
        { blockSize: plan.coarse.blockSize, hashLengths: () => plan.coarse.hashLengths },
        ...(fineLevel && fineFile ? [{ blockSize: fineLevel.blockSize, hashLengths: () => fineLevel.hashLengths, sink: fineFile.sink }] : []),
      ],
      sha512: true,
      ...(strong ? { strongHash: strong, fileHash: 'sha256' as const } : {}),
    });
    if (sig.length !== length) throw new ZpumpError('E_IO', `${path} changed while it was being announced; announce it again once it is stable`, { data: { retry: true } });
  } catch (error) {
    await fineFile?.discard();
    throw error;
  }
  const header = (i: number, forUrl: string): Uint8Array => renderControlFile(controlFor({ ...sig.levels[i]!, records: new Uint8Array(0) }, sig, name, forUrl, strong));
  const render = (i: number, forUrl: string): Uint8Array => renderControlFile(controlFor(sig.levels[i]!, sig, name, forUrl, strong));
  const written: string[] = [];
  const coarseBytes = render(0, plan.coarse.inline ? name : url);
  let zsync: ZsyncField;
  if (fineLevel && fineFile) {
    const fineIdentity = await fineFile.finish(header(1, url), fineLevel.bytes);
    const fineSize = fineLevel.bytes;
    written.push(fineLevel.path);
    if (options.writeZsync && options.signatureDir) {
      await copySidecar(fineLevel.path, fineFile.headerLength, `${path}.zsync`, header(1, name), recordBytesOf(length, fineLevel));
      written.push(`${path}.zsync`);
    }
    const fine: FineSignature = { retrievePath: fineLevel.retrievePath, size: fineSize, blockSize: fineLevel.blockSize, identity: { method: 'sha512', value: fineIdentity } };
    if (plan.coarse.inline) {
      zsync = { kind: 'inline', bytes: coarseBytes, blockSize: plan.coarse.blockSize, fine };
    } else {
      const coarseIdentity = await writeSidecar(plan.coarse.path!, coarseBytes);
      written.push(plan.coarse.path!);
      zsync = { kind: 'reference', retrievePath: plan.coarse.retrievePath!, size: coarseBytes.length, identity: { method: 'sha512', value: coarseIdentity }, blockSize: plan.coarse.blockSize, fine };
    }
  } else if (plan.coarse.inline) {
    zsync = { kind: 'inline', bytes: coarseBytes, blockSize: plan.coarse.blockSize };
    if (options.writeZsync) {
      await writeSidecar(`${path}.zsync`, coarseBytes);
      written.push(`${path}.zsync`);
    }
  } else {
    const identity = await writeSidecar(plan.coarse.path!, coarseBytes);
    written.push(plan.coarse.path!);
    zsync = { kind: 'reference', retrievePath: plan.coarse.retrievePath!, size: coarseBytes.length, identity: { method: 'sha512', value: identity } };
  }
  return { zsync, identity: sig.sha512!, plan, written };
}

const recordBytesOf = (length: number, level: { blockSize: number; hashLengths: HashLengths }): number =>
  blockCount(length, level.blockSize) * (level.hashLengths.rsumBytes + level.hashLengths.checksumBytes);

/**
 * A signature file written in place while its records are made: a temporary beside the target,
 * records at their offsets after a header of known length, the header last. Then it is read back
 * whole (its sha512 is the message's fine identity), its header parsed and its size checked
 * before it is renamed over the target.
 */
class StreamedSidecar {
  private constructor(
    private readonly target: string,
    private readonly temp: TempFile,
    readonly headerLength: number,
  ) {}

  static async open(target: string, headerLength: number): Promise<StreamedSidecar> {
    try {
      await mkdir(dirname(target), { recursive: true });
    } catch (error) {
      throw fromSystemError(error, 'cannot make the folder for the signature', target);
    }
    try {
      return new StreamedSidecar(target, await createTempFile(target), headerLength);
    } catch (error) {
      // Most often a read-only tree: say how to publish from one.
      if (error instanceof ZpumpError) error.message += ' (the fine signature goes beside the file: --signature-dir DIR with --signature-url URL puts it elsewhere; --levels 1 sends one level inline)';
      throw error;
    }
  }

  readonly sink = (records: Uint8Array, at: number): void => {
    writeAllAt(this.temp.handle.fd, records, this.headerLength + at, this.target);
  };

  async finish(header: Uint8Array, size: number): Promise<string> {
    try {
      if (header.length !== this.headerLength) throw new ZpumpError('E_INTERNAL', `${this.target}: a header of ${header.length} bytes, planned ${this.headerLength}`);
      writeAllAt(this.temp.handle.fd, header, 0, this.target);
      await this.temp.handle.sync().catch(() => undefined);
      const back = createHash('sha512');
      let got = 0;
      let head = new Uint8Array(0);
      for await (const chunk of createReadStream(this.temp.path, { highWaterMark: 1 << 20 })) {
        const bytes = chunk as Buffer;
        back.update(bytes);
        if (head.length < this.headerLength) head = Buffer.concat([head, bytes.subarray(0, this.headerLength - head.length)]);
        got += bytes.length;
      }
      const parsed = parseControlFileHeader(head);
      if (got !== size || !parsed || parsed.headerLength !== this.headerLength) throw new ZpumpError('E_IO', `${this.target}: the signature read back is not the one written (${got} bytes, ${size} meant)`);
      await this.temp.commit(0o644 & ~process.umask());
      return back.digest('base64');
    } catch (error) {
      await this.temp.discard();
      throw error;
    }
  }

  async discard(): Promise<void> {
    await this.temp.discard();
  }
}

function writeAllAt(fd: number, bytes: Uint8Array, position: number, target: string): void {
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  } catch (error) {
    throw fromSystemError(error, 'cannot write the signature', target);
  }
}

/** The fine file again under another header (its URL line): --write-zsync beside a file whose fine signature is elsewhere. */
async function copySidecar(source: string, sourceHeader: number, target: string, header: Uint8Array, recordBytes: number): Promise<void> {
  const out = await StreamedSidecar.open(target, header.length);
  try {
    let at = 0;
    for await (const chunk of createReadStream(source, { start: sourceHeader, highWaterMark: 1 << 20 })) {
      out.sink(chunk as Buffer, at);
      at += (chunk as Buffer).length;
    }
  } catch (error) {
    await out.discard();
    throw fromSystemError(error, 'cannot copy the signature', source);
  }
  await out.finish(header, header.length + recordBytes);
}

/**
 * Write a signature file atomically: a temporary beside it, read back and checked against the
 * sha512 of what was meant, then renamed over the target. Returns that sha512 (base64).
 */
async function writeSidecar(target: string, ...parts: Uint8Array[]): Promise<string> {
  const meant = createHash('sha512');
  for (const part of parts) meant.update(part);
  const digest = meant.digest('base64');
  try {
    await mkdir(dirname(target), { recursive: true });
  } catch (error) {
    throw fromSystemError(error, 'cannot make the folder for the signature', target);
  }
  const temp = await createTempFile(target);
  try {
    try {
      for (const part of parts) {
        // A write may take less than asked (large buffers): go on from where it stopped.
        for (let done = 0; done < part.length; ) done += (await temp.handle.write(part, done, part.length - done)).bytesWritten;
      }
      await temp.handle.sync().catch(() => undefined);
    } catch (error) {
      throw fromSystemError(error, 'cannot write the signature', target);
    }
    const back = createHash('sha512');
    for await (const chunk of createReadStream(temp.path, { highWaterMark: 1 << 20 })) back.update(chunk as Buffer);
    if (back.digest('base64') !== digest) throw new ZpumpError('E_IO', `${target}: the signature read back differs from what was written`);
    await temp.commit(0o644 & ~process.umask());
  } catch (error) {
    await temp.discard();
    throw error;
  }
  return digest;
}

/**
 * --signature-dir DIR [--signature-url URL] as the folder and its path under baseUrl. Subscribers
 * fetch only what lies under baseUrl (the one URL check), so the signatures' URL must be there:
 * given by --signature-url, or implied when DIR is inside --root.
 */
export function signatureDirOf(root: string, baseUrl: string, dir: string, url?: string): { dir: string; urlPath: string } {
  const absolute = resolvePath(dir);
  if (url === undefined) {
    const rel = relativePath(resolvePath(root), absolute);
    if (rel.startsWith('..') || isAbsolutePath(rel)) {
      throw new ZpumpError('E_USAGE', `--signature-dir ${dir} is outside --root: say where subscribers fetch it with --signature-url URL (a URL under --base-url)`);
    }
    return { dir: absolute, urlPath: rel.split(sep).join('/') };
  }
  let sig: URL;
  let base: URL;
  try {
    sig = new URL(url.endsWith('/') ? url : `${url}/`);
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw new ZpumpError('E_USAGE', `--signature-url ${JSON.stringify(url)} is not a URL`);
  }
  if (sig.origin !== base.origin || sig.protocol !== base.protocol || !sig.pathname.startsWith(base.pathname) || sig.search || sig.hash) {
    throw new ZpumpError('E_USAGE', `--signature-url ${url} is not under --base-url ${baseUrl}: subscribers fetch signatures only from under baseUrl`);
  }
  const segments = sig.pathname.slice(base.pathname.length).split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    throw new ZpumpError('E_USAGE', `--signature-url ${url} has a malformed %-escape`);
  }
  if (decoded.some((s) => s === '.' || s === '..' || s.includes('/') || s.includes('\\'))) throw new ZpumpError('E_USAGE', `--signature-url ${url} leaves its folder once decoded`);
  return { dir: absolute, urlPath: decoded.join('/') };
}
