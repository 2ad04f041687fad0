// Announcements for files: built by the publisher from a file on disk (signature inline, by
// reference, or none below the threshold), and checked by the subscriber before anything is
// written (scheme allow-list, relPath that stays inside --dir, signature that agrees with size).

import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DEFAULT_BUDGET, DEFAULT_THRESHOLD, make, type SignatureFormat } from '../api.js';
import type { StrongHashName } from '../engine/strong-hash.js';
import type { EngineChoice } from '../backends/types.js';
import { ZpumpError, fromSystemError } from '../errors.js';
import { checkableIdentity, dataUrlOf, parseV03Time, renderAnnouncement, signatureUrlOf, v03Time, type Announcement } from '../format/announcement.js';
import { DEFAULT_SCHEMES, MAX_REFERENCED_SIGNATURE_BYTES, cappedSize, refuseGzipInside } from '../format/url-policy.js';
import { WNM_MAX_BYTES, type WnmFields, type WnmRel } from '../format/wnm.js';
import { parseControlFile, type ControlFile } from '../format/control-file.js';
import { writeVerifiedControlFile } from '../local/control-file-io.js';
import { digestFile } from '../local/file-digest.js';
import { checkUnderRoot, refuseOwnNames } from '../local/safe-path.js';
import { buildTwoLevels, DEFAULT_PUBLISH_MESSAGE_LIMIT, signatureDirOf } from './two-level.js';

/** Signatures whose base64 is larger travel by reference (the .zsync is published beside the file). */
export const DEFAULT_INLINE_LIMIT = 64 << 10;

export interface BuildOptions {
  /** The file to announce. */
  path: string;
  /** relPath is taken relative to this folder. */
  root: string;
  baseUrl: string;
  threshold?: number;
  blockSize?: number | 'auto';
  budget?: number;
  engine?: EngineChoice;
  /** The signature's format: zsync 0.6.2's (default) or spec 0.8 with this block hash (make --format/--strong-hash). */
  signatureFormat?: SignatureFormat;
  strongHash?: StrongHashName;
  inlineLimit?: number;
  /** Also write PATH.zsync beside the file (always done for signatures sent by reference). */
  writeZsync?: boolean;
  /** fileOp to carry, e.g. {rename: "old/relPath"}. */
  fileOp?: Record<string, string>;
  /** The wire form: Sarracenia v03 (default) or a WIS2 Notification Message. */
  format?: MessageFormat;
  /** WIS2: data_id is PREFIX/relPath (relPath alone without it). */
  dataIdPrefix?: string;
  /** WIS2: GeoJSON geometry (Point or Polygon); null without it. */
  geometry?: unknown;
  /** WIS2: link rel for new content: canonical (new data, the default) or update (a new version). */
  rel?: Exclude<WnmRel, 'deletion'>;
  /**
   * 2 (default): a coarse signature inline, sized to fit `messageLimit`, and a fine one on the site
   * (pump/two-level.ts); 1: one signature, inline up to `inlineLimit`, else by reference.
   */
  levels?: 1 | 2;
  /** Two levels: the whole rendered message stays within this (default 8 KiB; WIS2 never above 8 192). */
  messageLimit?: number;
  /** Two levels: block size of the fine signature (default zsyncmake's: 2048, 4096 from 100 000 000 bytes). */
  fineBlockSize?: number;
  /** Two levels: fine signatures go under this folder instead of beside the files... */
  signatureDir?: string;
  /** ...which subscribers reach at this URL (under baseUrl); default: its place under `root`. */
  signatureUrl?: string;
}

export type MessageFormat = 'v03' | 'wis2';

export interface BuiltMessage {
  message: Announcement;
  signature: 'inline' | 'reference' | 'none';
  /** The .zsync written beside the file, if any (two levels: the fine signature, wherever it is). */
  zsyncPath?: string;
  engine?: string;
  /** Two levels: block sizes and where the fine signature went. */
  levels?: { coarseBlockSize: number; fineBlockSize?: number; finePath?: string; coarsePath?: string };
}

/** relPath of `path` under `root`, with / separators; refuses paths outside root. */
export function relPathOf(root: string, path: string): string {
  const rel = relative(resolve(root), resolve(path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new ZpumpError('E_USAGE', `${path} is not inside --root ${root}: relPath would leave it`);
  }
  return rel.split(sep).join('/');
}

export async function buildFileMessage(options: BuildOptions): Promise<BuiltMessage> {
  const relPath = relPathOf(options.root, options.path);
  let before;
  try {
    before = await stat(options.path);
  } catch (error) {
    throw fromSystemError(error, 'cannot announce', options.path);
  }
  if (!before.isFile()) throw new ZpumpError('E_BAD_INPUT', `${options.path} is not a regular file`);
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const message: Announcement = {
    pubTime: '',
    baseUrl: options.baseUrl,
    relPath,
    size: before.size,
    mtime: v03Time(before.mtimeMs),
    identity: { method: 'sha512', value: '' },
    extra: {},
  };
  if (options.fileOp) message.fileOp = options.fileOp;
  if (options.format === 'wis2') message.wnm = wnmFieldsFor(relPath, options, options.rel ?? 'canonical');
  if ((options.levels ?? 2) === 2) {
    if (before.size >= threshold) return buildTwoLevelMessage(message, before, options);
    message.identity.value = (await digestFile(options.path, { sha512: true })).sha512!;
    return finish(message, options.path, before, { message, signature: 'none' });
  }
  // A WIS2 message must fit 8 192 bytes whole: the signature gets what the rest leaves.
  const inlineLimit = message.wnm ? Math.min(options.inlineLimit ?? Infinity, wnmInlineLimit(message)) : (options.inlineLimit ?? DEFAULT_INLINE_LIMIT);
  let signature: BuiltMessage['signature'] = 'none';
  let zsyncPath: string | undefined;
  let engine: string | undefined;
  // The js engine gives the identity from the signature's own read; zsyncmake reads the file
  // itself, so the identity is hashed here at the same time (two reads, on two cores).
  const oneRead = before.size >= threshold && (options.engine === 'js' || options.signatureFormat === '0.8' || options.strongHash !== undefined);
  const [hashed, madeSha512] = await Promise.all([
    oneRead ? undefined : digestFile(options.path, { sha512: true }).then((d) => d.sha512!),
    (async (): Promise<string | undefined> => {
      if (before.size < threshold) return;
      // The signature goes to a private temp file unless it is to be published beside the data.
      const beside = `${options.path}.zsync`;
      const scratch = join(tmpdir(), `zpump-${process.pid}-${Math.random().toString(16).slice(2)}.zsync`);
      const output = options.writeZsync ? beside : scratch;
      try {
        // By default the block size is chosen so that the signature still fits inline once in base64.
        const budget = options.budget ?? Math.min(DEFAULT_BUDGET, Math.floor((inlineLimit * 3) / 4));
        const made = await make({ input: options.path, output, blockSize: options.blockSize, budget, force: true, engine: options.engine, format: options.signatureFormat, strongHash: options.strongHash, ...(oneRead ? { sha512: true } : {}) });
        if (made.skipped) return;
        engine = made.engine;
        const bytes = new Uint8Array(await readFile(output));
        if (Math.ceil(bytes.length / 3) * 4 <= inlineLimit) {
          message.zsync = { kind: 'inline', bytes, blockSize: made.blockSize };
          signature = 'inline';
          if (options.writeZsync) zsyncPath = beside;
        } else {
          if (!options.writeZsync) await writeVerifiedControlFile(beside, async (h) => { await h.writeFile(bytes); });
          const zsyncIdentity = createHash('sha512').update(bytes).digest('base64');
          message.zsync = { kind: 'reference', retrievePath: `${message.retrievePath ?? relPath}.zsync`, size: bytes.length, identity: { method: 'sha512', value: zsyncIdentity } };
          signature = 'reference';
          zsyncPath = beside;
        }
        return made.sha512;
      } finally {
        await rm(scratch, { force: true });
      }
    })(),
  ]);
  const identity = hashed ?? madeSha512 ?? (await digestFile(options.path, { sha512: true })).sha512!;
  // A file rewritten while we read it would give a signature and identity of neither version.
  const after = await stat(options.path).catch(() => undefined);
  if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw new ZpumpError('E_IO', `${options.path} changed while it was being announced; announce it again once it is stable`, { data: { retry: true } });
  }
  message.identity.value = identity;
  message.pubTime = v03Time(Date.now());
  if (message.wnm) checkWnmSize(message);
  return { message, signature, ...(zsyncPath ? { zsyncPath } : {}), ...(engine ? { engine } : {}) };
}

async function buildTwoLevelMessage(message: Announcement, before: Stats, options: BuildOptions): Promise<BuiltMessage> {
  const spec08 = options.signatureFormat === '0.8' || options.strongHash !== undefined;
  if (options.strongHash !== undefined && options.signatureFormat === '0.6.2') throw new ZpumpError('E_USAGE', "usage: --strong-hash needs format 0.8 (make --format 0.8, announce/watch --signature-format 0.8): zsync 0.6.2's format has MD4 only");
  if (options.engine === 'zsync') throw new ZpumpError('E_USAGE', 'usage: two-level signatures are made by the js engine (one read of the file gives both levels and the identity); --engine zsync needs --levels 1');
  const limit = Math.min(options.messageLimit ?? DEFAULT_PUBLISH_MESSAGE_LIMIT, message.wnm ? WNM_MAX_BYTES : Infinity);
  const fixed = typeof options.blockSize === 'number' ? options.blockSize : undefined;
  const built = await buildTwoLevels(message, options.path, before.size, before.mtimeMs, {
    messageLimit: limit,
    ...(options.inlineLimit !== undefined ? { inlineLimit: options.inlineLimit } : {}),
    ...(options.fineBlockSize !== undefined ? { fineBlockSize: options.fineBlockSize } : {}),
    ...(fixed !== undefined ? { coarseBlockSize: fixed } : {}),
    ...(spec08 ? { strongHash: options.strongHash ?? 'MD4' } : {}),
    ...(options.signatureDir !== undefined ? { signatureDir: signatureDirOf(options.root, options.baseUrl, options.signatureDir, options.signatureUrl) } : {}),
    ...(options.writeZsync ? { writeZsync: true } : {}),
  });
  message.zsync = built.zsync;
  message.identity.value = built.identity;
  const { plan } = built;
  const result: BuiltMessage = {
    message,
    signature: built.zsync.kind,
    engine: 'js',
    levels: { coarseBlockSize: plan.coarse.blockSize, ...(plan.fine ? { fineBlockSize: plan.fine.blockSize, finePath: plan.fine.path } : {}), ...(plan.coarse.path ? { coarsePath: plan.coarse.path } : {}) },
  };
  if (built.written.length > 0) result.zsyncPath = built.written[0]!;
  await finish(message, options.path, before, result);
  const bytes = Buffer.byteLength(renderAnnouncement(message));
  if (bytes > limit) throw new ZpumpError('E_INTERNAL', `the message for ${message.relPath} came out at ${bytes} bytes, over the ${limit} planned for`);
  return result;
}

/** The last steps of every build: the file must not have changed meanwhile; then the time of publication. */
async function finish(message: Announcement, path: string, before: Stats, result: BuiltMessage): Promise<BuiltMessage> {
  const after = await stat(path).catch(() => undefined);
  if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw new ZpumpError('E_IO', `${path} changed while it was being announced; announce it again once it is stable`, { data: { retry: true } });
  }
  message.pubTime = v03Time(Date.now());
  if (message.wnm) checkWnmSize(message);
  return result;
}

/** A v03 removal notice (a WIS2 deletion with --format wis2): the file is gone at the source. */
export function buildRemoveMessage(root: string, path: string, baseUrl: string, wire: WireOptions = {}): Announcement {
  const relPath = relPathOf(root, path);
  const message: Announcement = { pubTime: v03Time(Date.now()), baseUrl, relPath, size: 0, identity: { method: 'sha512', value: EMPTY_SHA512 }, fileOp: { remove: '' }, extra: {} };
  if (wire.format === 'wis2') message.wnm = wnmFieldsFor(relPath, wire, 'deletion');
  return message;
}

type WireOptions = Pick<BuildOptions, 'format' | 'dataIdPrefix' | 'geometry'>;

function wnmFieldsFor(relPath: string, wire: WireOptions, rel: WnmRel): WnmFields {
  const prefix = (wire.dataIdPrefix ?? '').replace(/\/+$/, '');
  return { dataId: prefix ? `${prefix}/${relPath}` : relPath, rel, ...(wire.geometry !== undefined ? { geometry: wire.geometry } : {}) };
}

/** The room left for the base64 signature in a WIS2 message: 8 192 bytes less everything else. */
export function wnmInlineLimit(message: Announcement): number {
  // Placeholders as long as the real values: times have a fixed width, a sha512 is 88 base64 chars.
  const rest = renderAnnouncement({ ...message, pubTime: v03Time(Date.now()), identity: { method: 'sha512', value: 'A'.repeat(88) }, zsync: undefined });
  const wrapper = ',"zsync":{"encoding":"base64","value":"","size":99999,"blockSize":1073741824}';
  return WNM_MAX_BYTES - Buffer.byteLength(rest) - wrapper.length;
}

function checkWnmSize(message: Announcement): void {
  const bytes = Buffer.byteLength(renderAnnouncement(message));
  if (bytes > WNM_MAX_BYTES) {
    throw new ZpumpError('E_USAGE', `the WIS2 message for ${message.relPath} would be ${bytes} bytes, over the ${WNM_MAX_BYTES}-byte cap: shorten the path or --data-id-prefix`);
  }
}

const EMPTY_SHA512 = createHash('sha512').digest('base64');

export const isRemove = (a: Announcement): boolean => a.fileOp !== undefined && 'remove' in a.fileOp;
export const renamedFrom = (a: Announcement): string | undefined => (typeof a.fileOp?.rename === 'string' ? a.fileOp.rename : undefined);

export interface AcceptOptions {
  /** URL schemes the subscriber fetches from (default http, https, sftp). */
  schemes?: readonly string[];
  /** Take files whose identity cannot be checked (method none or unknown) unchecked. */
  acceptUnverified?: boolean;
}

export { DEFAULT_SCHEMES };

const refuse = (message: string): ZpumpError => new ZpumpError('E_BAD_MESSAGE', message);
const unsafe = (message: string): ZpumpError => new ZpumpError('E_UNSAFE_PATH', message);

/**
 * Checks that need no disk, in one place: local names (relPath, a rename's source), every URL the
 * message names (format/url-policy), times, identity, signature size and consistency. Returns the
 * inline signature, parsed.
 */
export function checkMessage(a: Announcement, options: AcceptOptions = {}): { control?: ControlFile } {
  checkRelPath(a.relPath, 'relPath');
  refuseOwnNames(a.relPath, 'relPath');
  // A rename's old name never refuses the message: renameSourceOf maps it inside --dir or says why not.
  const rules = { schemes: options.schemes ?? DEFAULT_SCHEMES };
  dataUrlOf(a, rules); // baseUrl and retrievePath: scheme, and under baseUrl once decoded
  // Times order the messages of a file: one that does not parse cannot be ordered, nor trusted to remove.
  if (parseV03Time(a.pubTime) === undefined) throw refuse(`bad announcement: pubTime ${JSON.stringify(a.pubTime.slice(0, 40))} is not a v03 time (YYYYMMDDTHHMMSS[.fff], UTC)`);
  if (a.mtime !== undefined && parseV03Time(a.mtime) === undefined) throw refuse(`bad announcement: mtime ${JSON.stringify(a.mtime.slice(0, 40))} is not a v03 time (YYYYMMDDTHHMMSS[.fff], UTC)`);
  if (isRemove(a)) return {};
  checkableIdentity(a.identity, options.acceptUnverified);
  if (a.zsync?.kind === 'inline') {
    let control: ControlFile;
    try {
      control = parseControlFile(a.zsync.bytes);
    } catch (error) {
      throw refuse(`the inline signature of ${JSON.stringify(a.relPath)} is not a valid .zsync: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (control.length !== a.size) throw refuse(`the signature of ${JSON.stringify(a.relPath)} describes ${control.length} bytes but size says ${a.size}`);
    refuseGzipInside(control, a.relPath);
    return { control };
  }
  if (a.zsync?.kind === 'reference') {
    signatureUrlOf(a, rules);
    if (a.zsync.size !== undefined) cappedSize(a.zsync.size, MAX_REFERENCED_SIGNATURE_BYTES, 'zsync.size');
  }
  return {};
}

function checkRelPath(path: string, field: string): void {
  const parts = path.split('/');
  if (path.startsWith('/') || /^[a-z]:/i.test(path) || path.includes('\\')) throw unsafe(`${field} ${JSON.stringify(path)} is absolute or not a plain / path`);
  if (parts.includes('..')) throw unsafe(`${field} ${JSON.stringify(path)} contains ".."`);
  if (path.includes('\0')) throw unsafe(`${field} contains a NUL byte`);
  if (parts.every((p) => p === '' || p === '.')) throw unsafe(`${field} ${JSON.stringify(path)} names no file`);
}

/**
 * THE place a message's local path is resolved: relPath under dir, refused when it names zpump's
 * own files, or would be reached through a symbolic link or land on one (local/safe-path). Every
 * write, rename and remove re-checks the result with recheckLocalPath right before it happens.
 */
export async function localPathFor(dir: string, relPath: string): Promise<string> {
  checkRelPath(relPath, 'relPath');
  refuseOwnNames(relPath, 'relPath');
  const root = await realDir(dir);
  const target = resolve(root, ...relPath.split('/').filter((p) => p !== '' && p !== '.'));
  await checkUnderRoot(root, target, relPath);
  return target;
}

/**
 * The local relPath a rename's old name stands for, or why there is none. zpump sends the old
 * relPath; sr3 sends the publisher's absolute path (/srv/pub/obs/a.bin), mapped by taking off
 * the folder of baseUrl's path (file:///srv/pub, sftp://host//srv/pub) or a --rename-strip PREFIX.
 */
export function renameSourceOf(a: Announcement, renameStrip?: string): { relPath: string } | { why: string } {
  const old = renamedFrom(a);
  if (old === undefined) return { why: 'the message renames nothing' };
  let rel = old;
  if (old.startsWith('/')) {
    let basePath = '';
    try {
      basePath = decodeURIComponent(new URL(a.baseUrl).pathname);
    } catch {
      // No usable baseUrl path: only --rename-strip can map it.
    }
    const prefixes = [renameStrip ?? '', basePath].map((p) => p.replace(/\/{2,}/g, '/').replace(/\/+$/, '')).filter((p) => p.startsWith('/'));
    const prefix = prefixes.find((p) => old.startsWith(`${p}/`));
    if (prefix === undefined) return { why: `${JSON.stringify(old)} is a path on the publisher under neither baseUrl's path nor --rename-strip` };
    rel = old.slice(prefix.length + 1);
  }
  try {
    checkRelPath(rel, 'fileOp.rename');
    refuseOwnNames(rel, 'fileOp.rename');
  } catch (error) {
    return { why: error instanceof Error ? error.message : String(error) };
  }
  return { relPath: rel };
}

/** The same walk again, right before a write, rename or remove of `target` (from localPathFor). */
export async function recheckLocalPath(dir: string, target: string): Promise<void> {
  const root = await realDir(dir);
  await checkUnderRoot(root, target, relative(root, target).split(sep).join('/'));
}

async function realDir(dir: string): Promise<string> {
  return realpath(dir).catch((error: unknown) => {
    throw fromSystemError(error, 'cannot use --dir', dir);
  });
}

/** Make the folders of a checked local path (after localPathFor). */
export async function makeParents(target: string): Promise<void> {
  try {
    await mkdir(dirname(target), { recursive: true });
  } catch (error) {
    throw fromSystemError(error, 'cannot make the folder for', target);
  }
}
