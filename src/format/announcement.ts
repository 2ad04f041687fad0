// Announcement messages: MetPX Sarracenia v03 notification JSON plus a `zsync` field carrying
// the whole .zsync in base64 (DESIGN.md "Announcement message"). Pure: objects ↔ JSON text.
// Building is strict; reading is lenient with other publishers (integrity for identity,
// retPath for retrievePath, a string size, a non-object zsync counts as missing).

import { ZpumpError } from '../errors.js';
import { ALL_SCHEMES, MAX_REFERENCED_SIGNATURE_BYTES, fetchableUrl, type UrlRules } from './url-policy.js';
import { MAX_BLOCK_SIZE } from './hash-lengths.js';
import { looksLikeWnm, renderWnm, wnmToV03, type WnmFields } from './wnm.js';

export interface Identity {
  method: string; // sha512 by default
  value: string; // base64
}

/**
 * The fine level of a two-level signature (DESIGN.md "Two levels"): a standard .zsync with small
 * blocks, published beside the data (or under the publisher's --signature-dir), of which a
 * subscriber fetches only the header and the records that cover the coarse blocks it lacks.
 *
 * Staleness: `identity` (sha512 of the whole fine file) only helps a reader that fetches the whole
 * file; a partial fetcher never sees all of it. A fine file is therefore current only when its own
 * header's `SHA-1:` and `Length:` equal the coarse signature's (both describe the same version of
 * the data). One that disagrees was replaced by a later publication, or lies: the subscriber falls
 * back to the coarse level, and the final identity check of the data guards the rest.
 */
export interface FineSignature {
  /** Relative to baseUrl (the data's folder in a WNM), like any path in a message. */
  retrievePath: string;
  /** Bytes of the fine .zsync file. */
  size: number;
  blockSize: number;
  identity: Identity;
}

/** What both forms of the (coarse) signature may carry: the fine level, or why it was not taken. */
interface TwoLevels {
  fine?: FineSignature;
  /** Set when reading: the message had a `fine` that zpump does not trust or understand (never rendered). */
  fineIgnored?: string;
}

export type ZsyncField =
  | ({ kind: 'inline'; bytes: Uint8Array; blockSize?: number } & TwoLevels)
  | ({ kind: 'reference'; retrievePath: string; size?: number; identity?: Identity; blockSize?: number } & TwoLevels);

export interface Announcement {
  pubTime: string;
  baseUrl: string;
  relPath: string;
  retrievePath?: string;
  size: number;
  mtime?: string;
  identity: Identity;
  zsync?: ZsyncField;
  fileOp?: Record<string, unknown>;
  /** Present when the message travels as a WIS2 Notification Message (wnm.ts). */
  wnm?: WnmFields;
  /** Fields we do not interpret, kept for relays. */
  extra: Record<string, unknown>;
}

export const DEFAULT_MESSAGE_LIMIT = 16 << 20;

const bad = (message: string): ZpumpError => new ZpumpError('E_BAD_MESSAGE', `bad announcement: ${message}`);

/** v03 time format: 20261124T162730.123 (UTC). */
export function v03Time(ms: number, withMillis = true): string {
  const iso = new Date(ms).toISOString(); // 2026-11-24T16:27:30.123Z
  const compact = iso.replace(/[-:]/g, '').replace('Z', '');
  return withMillis ? compact : compact.replace(/\.\d+$/, '');
}

/** A v03 time in ms since 1970, or undefined when it is not one (a 13th month, 25 o'clock, text). */
export function parseV03Time(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Number(((m[7] ?? '0') + '00').slice(0, 3));
  const time = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls 20261332 over into the next year: a field out of range is no time at all.
  const back = new Date(time);
  if (year < 1970 || back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || back.getUTCHours() !== hour || back.getUTCMinutes() !== minute || back.getUTCSeconds() !== second) {
    return undefined;
  }
  return time;
}

/** Identity methods zpump can check (both v03's); the digest length in bytes of each. */
export const VERIFIABLE_METHODS: Readonly<Record<string, number>> = { sha512: 64, md5: 16 };

/**
 * The identity a subscriber checks the result against: sha512 or md5 with a base64 digest of the
 * right length. Anything else (none, arbitrary, an unknown method, a malformed value) is refused
 * unless the operator accepts unverified files; then undefined (nothing to check).
 */
export function checkableIdentity(identity: Identity, acceptUnverified = false): { method: 'sha512' | 'md5'; value: string } | undefined {
  const method = identity.method.toLowerCase();
  const length = VERIFIABLE_METHODS[method];
  if (length === undefined) {
    if (acceptUnverified) return undefined;
    throw bad(`identity method ${JSON.stringify(identity.method.slice(0, 40))} cannot be verified (zpump checks ${Object.keys(VERIFIABLE_METHODS).join(' and ')}); --accept-unverified takes such files unchecked`);
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(identity.value) || Buffer.from(identity.value, 'base64').length !== length) {
    throw bad(`the ${method} identity value is not the base64 of a ${length}-byte digest`);
  }
  return { method: method as 'sha512' | 'md5', value: identity.value };
}

export function renderAnnouncement(a: Announcement): string {
  const out: Record<string, unknown> = { ...a.extra, pubTime: a.pubTime, baseUrl: a.baseUrl, relPath: a.relPath };
  if (a.retrievePath !== undefined) out.retrievePath = a.retrievePath;
  out.size = a.size;
  if (a.mtime !== undefined) out.mtime = a.mtime;
  out.identity = a.identity;
  if (a.fileOp !== undefined) out.fileOp = a.fileOp;
  if (a.zsync?.kind === 'inline') {
    out.zsync = { encoding: 'base64', value: Buffer.from(a.zsync.bytes).toString('base64'), size: a.zsync.bytes.length, ...(a.zsync.blockSize ? { blockSize: a.zsync.blockSize } : {}), ...renderFine(a.zsync.fine) };
  } else if (a.zsync?.kind === 'reference') {
    out.zsync = { retrievePath: a.zsync.retrievePath, ...(a.zsync.size !== undefined ? { size: a.zsync.size } : {}), ...(a.zsync.identity ? { identity: a.zsync.identity } : {}), ...(a.zsync.blockSize ? { blockSize: a.zsync.blockSize } : {}), ...renderFine(a.zsync.fine) };
  }
  if (a.wnm) return renderWnm(out, a.wnm, dataUrlOf(a));
  return JSON.stringify(out);
}

export function parseAnnouncement(text: string | Uint8Array, limit = DEFAULT_MESSAGE_LIMIT): Announcement {
  const length = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (length > limit) throw bad(`${length} bytes, over the ${limit}-byte limit`);
  let raw: unknown;
  try {
    raw = JSON.parse(typeof text === 'string' ? text : new TextDecoder().decode(text));
  } catch (error) {
    // V8 quotes the start of the text ('Unexpected token 'r', "root:x:0:0"... is not valid JSON'):
    // a spool entry hard-linked to a local file would put its first bytes in the log and reason file.
    const why = error instanceof Error ? error.message : String(error);
    throw bad(`not valid JSON (${/is not valid JSON$/.test(why) ? 'unexpected text; content not shown' : why})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a JSON object');
  // A WIS2 notification is read as the v03 object it maps to, then checked like any other.
  const wnm = looksLikeWnm(raw as Record<string, unknown>) ? wnmToV03(raw as Record<string, unknown>) : undefined;
  const o = wnm?.v03 ?? (raw as Record<string, unknown>);
  const str = (key: string, required = true): string | undefined => {
    const v = o[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw bad(`"${key}" must be a non-empty string`);
    return v;
  };
  const pubTime = str('pubTime')!;
  const baseUrl = str('baseUrl')!;
  const relPath = str('relPath')!;
  const retrievePath = (o.retrievePath ?? o.retPath) as string | undefined;
  if (retrievePath !== undefined && typeof retrievePath !== 'string') throw bad('"retrievePath" must be a string');
  // A removal describes no content: other publishers may send it without size or identity.
  const removal = typeof o.fileOp === 'object' && o.fileOp !== null && 'remove' in o.fileOp;
  const size = o.size === undefined && removal ? 0 : typeof o.size === 'string' && /^\d+$/.test(o.size) ? Number(o.size) : o.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('"size" must be a whole number of bytes');
  const identity = readIdentity(o.identity ?? o.integrity, 'identity') ?? (removal ? { method: 'none', value: '' } : undefined);
  if (!identity) throw bad('"identity" is missing: {"method": "sha512", "value": "<base64>"}');
  const mtime = str('mtime', false);
  const known = new Set(['pubTime', 'baseUrl', 'relPath', 'retrievePath', 'retPath', 'size', 'mtime', 'identity', 'integrity', 'zsync', 'fileOp']);
  const extra = Object.fromEntries(Object.entries(o).filter(([k]) => !known.has(k)));
  const a: Announcement = { pubTime, baseUrl, relPath, size, identity, extra };
  if (retrievePath !== undefined) a.retrievePath = retrievePath;
  if (mtime !== undefined) a.mtime = mtime;
  if (typeof o.fileOp === 'object' && o.fileOp !== null) a.fileOp = o.fileOp as Record<string, unknown>;
  const z = readZsync(o.zsync);
  if (z) a.zsync = z;
  if (wnm) a.wnm = wnm.wnm;
  return a;
}

function readIdentity(v: unknown, what: string): Identity | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null) throw bad(`"${what}" must be an object`);
  const { method, value } = v as Record<string, unknown>;
  if (typeof method !== 'string' || typeof value !== 'string') throw bad(`"${what}" needs string "method" and "value"`);
  return { method, value };
}

function readZsync(v: unknown): ZsyncField | undefined {
  // C relays turn unknown non-string fields into "unsupported": treat anything odd as absent.
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const z = v as Record<string, unknown>;
  let field: ZsyncField | undefined;
  if (typeof z.value === 'string') {
    if (z.encoding !== undefined && z.encoding !== 'base64') throw bad(`zsync encoding ${JSON.stringify(z.encoding)} is not supported (base64 is)`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(z.value)) throw bad('zsync value is not base64');
    const bytes = new Uint8Array(Buffer.from(z.value, 'base64'));
    field = typeof z.blockSize === 'number' ? { kind: 'inline', bytes, blockSize: z.blockSize } : { kind: 'inline', bytes };
  } else {
    const retrievePath = z.retrievePath ?? z.retPath;
    if (typeof retrievePath !== 'string') return undefined;
    field = { kind: 'reference', retrievePath };
    if (typeof z.size === 'number') field.size = z.size;
    const identity = readIdentity(z.identity, 'zsync.identity');
    if (identity) field.identity = identity;
    if (typeof z.blockSize === 'number') field.blockSize = z.blockSize;
  }
  if (z.fine !== undefined) {
    const fine = readFine(z.fine, field.blockSize);
    if ('why' in fine) field.fineIgnored = fine.why;
    else field.fine = fine;
  }
  return field;
}

/** Longest fine retrievePath taken (a path in a message, not a document). */
const MAX_FINE_PATH_CHARS = 4096;

/**
 * The `fine` object, strictly: a field that is missing, of the wrong type or out of bounds makes
 * zpump ignore the fine level (with the reason) and keep the coarse one, which works alone.
 */
function readFine(v: unknown, coarseBlockSize: number | undefined): FineSignature | { why: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { why: 'zsync.fine is not an object' };
  const f = v as Record<string, unknown>;
  const path = f.retrievePath ?? f.retPath;
  if (typeof path !== 'string' || path === '') return { why: 'zsync.fine.retrievePath must be a non-empty string' };
  if (path.length > MAX_FINE_PATH_CHARS) return { why: `zsync.fine.retrievePath is longer than ${MAX_FINE_PATH_CHARS} characters` };
  if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size <= 0) return { why: 'zsync.fine.size must be a positive whole number of bytes' };
  if (f.size > MAX_REFERENCED_SIGNATURE_BYTES) return { why: `zsync.fine.size ${f.size} is more than zpump reads of a signature (${MAX_REFERENCED_SIGNATURE_BYTES})` };
  const b = f.blockSize;
  if (typeof b !== 'number' || !Number.isSafeInteger(b) || b <= 0 || (b & (b - 1)) !== 0 || b > MAX_BLOCK_SIZE) return { why: `zsync.fine.blockSize must be a power of two up to ${MAX_BLOCK_SIZE}` };
  if (coarseBlockSize !== undefined && b > coarseBlockSize) return { why: `zsync.fine.blockSize ${b} is larger than the coarse level's ${coarseBlockSize}` };
  if (typeof f.identity !== 'object' || f.identity === null) return { why: 'zsync.fine.identity must be an object' };
  const { method, value } = f.identity as Record<string, unknown>;
  if (typeof method !== 'string' || typeof value !== 'string') return { why: 'zsync.fine.identity needs string "method" and "value"' };
  try {
    checkableIdentity({ method, value });
  } catch (error) {
    return { why: `zsync.fine.identity: ${error instanceof Error ? error.message.replace(/^bad announcement: /, '') : String(error)}` };
  }
  return { retrievePath: path, size: f.size, blockSize: b, identity: { method, value } };
}

function renderFine(fine: FineSignature | undefined): { fine?: Record<string, unknown> } {
  return fine ? { fine: { retrievePath: fine.retrievePath, size: fine.size, blockSize: fine.blockSize, identity: fine.identity } } : {};
}

/**
 * Where subscribers fetch the data: baseUrl + (retrievePath or relPath), through the one URL check
 * (format/url-policy fetchableUrl). `rules` default to every scheme zpump reads: the subscriber
 * narrows them (file: only with --allow-file).
 */
export function dataUrlOf(a: Announcement, rules: UrlRules = { schemes: ALL_SCHEMES }): string {
  return fetchableUrl(a.retrievePath ?? a.relPath, { ...rules, baseUrl: a.baseUrl, what: a.retrievePath !== undefined ? 'retrievePath' : 'relPath' });
}

/** Where a signature sent by reference is fetched: zsync.retrievePath under baseUrl, same check. */
export function signatureUrlOf(a: Announcement, rules: UrlRules = { schemes: ALL_SCHEMES }): string | undefined {
  if (a.zsync?.kind !== 'reference') return undefined;
  return fetchableUrl(a.zsync.retrievePath, { ...rules, baseUrl: a.baseUrl, what: 'zsync.retrievePath' });
}

/** A fine level a subscriber may use: its URL passed the one URL check. */
export interface UsableFine extends FineSignature {
  url: string;
}

/**
 * The fine level of a message for a subscriber (H8's two-level fetch), or why there is none to
 * use: absent, ignored when the message was read (fineIgnored), or its URL refused by the one URL
 * check (scheme, under baseUrl once decoded). Never throws: without a fine level the coarse one
 * still works. `rules` default to every scheme zpump reads; a subscriber narrows them.
 */
export function fineSignatureOf(a: Announcement, rules: UrlRules = { schemes: ALL_SCHEMES }): UsableFine | { why: string } {
  const z = a.zsync;
  if (!z) return { why: 'the message carries no signature' };
  if (z.fineIgnored !== undefined) return { why: z.fineIgnored };
  if (!z.fine) return { why: 'the message has one signature level' };
  try {
    return { ...z.fine, url: fetchableUrl(z.fine.retrievePath, { ...rules, baseUrl: a.baseUrl, what: 'zsync.fine.retrievePath' }) };
  } catch (error) {
    return { why: error instanceof Error ? error.message.replace(/^bad announcement: /, '') : String(error) };
  }
}

/** The URL of the message's fine signature once checked, or undefined when there is none to use (see fineSignatureOf). */
export function fineSignatureUrl(a: Announcement, rules: UrlRules = { schemes: ALL_SCHEMES }): string | undefined {
  const fine = fineSignatureOf(a, rules);
  return 'url' in fine ? fine.url : undefined;
}
