// The .zsync control file, as zsync 0.6.2 writes and reads it (zsync-format.md §1–§6.1), and as
// format spec 0.8 extends it (§11: Strong-Hash-Algorithm, File-Hash):
//
//   "Key: value\n" header lines (zsyncmake's order: zsync, Filename, MTime, Blocksize, Length,
//   Hash-Lengths, URL..., SHA-1), one empty line, then ceil(Length/Blocksize) binary records of
//   rsumBytes (trailing bytes of the weak sum) + checksumBytes (leading bytes of the block's
//   strong hash, MD4 unless Strong-Hash-Algorithm says otherwise).
//
// Pure: bytes in, objects out, and back. Parsing is bounded: every problem is a ZpumpError
// naming what is wrong, checked before anything is allocated from the file's numbers. It is as
// lenient as zsync 0.6.2 where 0.6.2 is (an unparsable MTime, spaces in Hash-Lengths, bytes after
// the records), and says so in `notes`.

import { ZpumpError } from '../errors.js';
import { blockCount, geometryProblem, isPowerOfTwo, MAX_BLOCK_SIZE, type HashLengths } from './hash-lengths.js';
import { formatMTime, parseMTime } from './mtime.js';
import { DIGEST_BYTES, strongHashNamed, type StrongHashName } from './strong-hash-names.js';

export interface GzipInside {
  zUrls: string[];
  zFilename?: string;
  recompress?: string;
  zMapEntries: number;
}

export interface ControlFile {
  zsyncVersion: string;
  filename?: string;
  /** Seconds since the epoch (UTC). */
  mtime?: number;
  blockSize: number;
  length: number;
  hashLengths: HashLengths;
  urls: string[];
  /** Lowercase hex SHA-1 of the whole target; absent in files that carry none. */
  sha1?: string;
  /** Spec 0.8's Strong-Hash-Algorithm header; absent = MD4 (and no header is written). */
  strongHash?: StrongHashName;
  /** Spec 0.8's File-Hash header: algorithm as written (SHA-1, SHA-256, or one zpump cannot check) and lowercase hex. */
  fileHash?: { algorithm: string; hex: string };
  /** Headers zsync would skip because `Safe:` lists them; kept for round trips. */
  safe?: string;
  extraHeaders: Array<[string, string]>;
  /** Present when the file describes gzip-inside data (Z-Map2): only the C tools handle it. */
  gzip?: GzipInside;
  /** ceil(length / blockSize) records of hashLengths.rsumBytes + hashLengths.checksumBytes bytes. */
  records: Uint8Array;
  /** What the parser let pass as zsync 0.6.2 does (ignored MTime, bytes after the records...), for inspect. */
  notes?: string[];
}

/** The strong hash the records hold. */
export function strongHashOf(cf: ControlFile): StrongHashName {
  return cf.strongHash ?? 'MD4';
}

export interface WholeFileChecks {
  sha1?: string;
  sha256?: string;
  /** A File-Hash algorithm zpump cannot compute: the result is not checked against it. */
  unverified?: string;
}

/** The whole-file hashes a rebuilt target must match before it replaces the old one. */
export function wholeFileChecks(cf: ControlFile): WholeFileChecks {
  const checks: WholeFileChecks = {};
  if (cf.sha1 !== undefined) checks.sha1 = cf.sha1;
  const fh = cf.fileHash;
  if (fh?.algorithm === 'SHA-1') checks.sha1 ??= fh.hex;
  else if (fh?.algorithm === 'SHA-256') checks.sha256 = fh.hex;
  else if (fh) checks.unverified = fh.algorithm;
  return checks;
}

/** True when the rebuilt file is checked as a whole (SHA-1 or File-Hash in an algorithm zpump knows). */
export function isVerifiable(cf: ControlFile): boolean {
  const c = wholeFileChecks(cf);
  return c.sha1 !== undefined || c.sha256 !== undefined;
}

const FILE_HASH_HEX: Record<string, number> = { 'SHA-1': 40, 'SHA-256': 64 };

export const MAX_HEADER_BYTES = 64 * 1024;
export { MAX_BLOCK_SIZE };
// Min-Version is compared as zsync 0.6.2 does (a plain string comparison) with what zpump reads.
const READS_VERSION = '0.8.0';

const bad = (message: string, data: Record<string, unknown> = {}): ZpumpError =>
  new ZpumpError('E_BAD_CONTROL', `bad control file: ${message}`, { data });

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

export function recordLength(h: HashLengths): number {
  return h.rsumBytes + h.checksumBytes;
}

/**
 * Serialise exactly as zsyncmake 0.6.2 does (header order, spelling, blank line, records); a file
 * with spec 0.8's headers in upstream zsyncmake 0.7+'s order instead, where Safe: comes before
 * the headers 0.6.2 does not know, so 0.6.2 can still read an MD4 file.
 */
export function renderControlFile(cf: ControlFile): Uint8Array {
  if (cf.gzip) throw new ZpumpError('E_UNSUPPORTED', 'writing gzip-inside control files is not supported (use zsyncmake)');
  const h = cf.hashLengths;
  const hashLengths = `Hash-Lengths: ${h.seqMatches},${h.rsumBytes},${h.checksumBytes}`;
  const lines = [`zsync: ${cf.zsyncVersion}`];
  const spec08 = cf.strongHash !== undefined || cf.fileHash !== undefined;
  if (cf.safe !== undefined && !spec08) lines.push(`Safe: ${cf.safe}`);
  if (cf.filename !== undefined) lines.push(`Filename: ${cf.filename}`);
  if (cf.mtime !== undefined) lines.push(`MTime: ${formatMTime(cf.mtime)}`);
  lines.push(`Blocksize: ${cf.blockSize}`, `Length: ${cf.length}`);
  if (spec08) {
    if (cf.safe !== undefined) lines.push(`Safe: ${cf.safe}`);
    lines.push(hashLengths);
    if (cf.strongHash !== undefined) lines.push(`Strong-Hash-Algorithm: ${cf.strongHash}`);
    if (cf.fileHash !== undefined) lines.push(`File-Hash: ${cf.fileHash.algorithm}:${cf.fileHash.hex}`);
  } else lines.push(hashLengths);
  for (const url of cf.urls) lines.push(`URL: ${url}`);
  if (cf.sha1 !== undefined) lines.push(`SHA-1: ${cf.sha1}`);
  for (const [key, value] of cf.extraHeaders) lines.push(`${key}: ${value}`);
  const header = encoder.encode(lines.join('\n') + '\n\n');
  const out = new Uint8Array(header.length + cf.records.length);
  out.set(header, 0);
  out.set(cf.records, header.length);
  return out;
}

/**
 * The header of a .zsync whose records are fetched piecemeal (a two-level sync's fine signature):
 * parsed and checked like a whole file, `records` left empty, `headerLength` where record 0 starts.
 * Undefined when `bytes` ends before the header does and more could follow (fetch a longer piece).
 */
export function parseControlFileHeader(bytes: Uint8Array): { control: ControlFile; headerLength: number } | undefined {
  const end = headerEnd(bytes);
  if (end === undefined) {
    if (bytes.length < MAX_HEADER_BYTES) return undefined;
    throw bad(`no empty line ending the header within its first ${MAX_HEADER_BYTES} bytes: not a .zsync file`);
  }
  const head = bytes.subarray(0, end);
  // Z-Map2's binary map sits inside the header: such files are only read whole.
  if (/^Z-Map2:/m.test(Buffer.from(head).toString('latin1'))) throw new ZpumpError('E_UNSUPPORTED', 'a gzip-inside (Z-Map2) control file cannot be read piecemeal');
  return { control: parseControlFile(head, true), headerLength: end };
}

// Offset just past the empty line that ends the header, if it is within bytes.
function headerEnd(bytes: Uint8Array): number | undefined {
  const limit = Math.min(bytes.length, MAX_HEADER_BYTES);
  let pos = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0 || nl >= limit) return undefined;
    if (nl === pos) return nl + 1;
    pos = nl + 1;
  }
}

/** Parse and validate a .zsync file. The returned records are a view into `bytes`. */
export function parseControlFile(bytes: Uint8Array, headerOnly = false): ControlFile {
  const headers: Array<[string, string]> = [];
  let pos = 0;
  let zMapEntries: number | undefined;
  for (let lineNo = 1; ; lineNo++) {
    const limit = Math.min(bytes.length, MAX_HEADER_BYTES);
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0 || nl >= limit) {
      if (bytes.length === 0) throw bad('the file is empty');
      throw bad(bytes.length <= MAX_HEADER_BYTES ? 'the header never ends (no empty line): truncated, or not a .zsync file' : `no empty line ending the header within its first ${MAX_HEADER_BYTES} bytes: not a .zsync file`);
    }
    if (nl === pos) {
      pos = nl + 1;
      break;
    }
    const [key, value] = splitHeaderLine(bytes.subarray(pos, nl), lineNo);
    pos = nl + 1;
    headers.push([key, value]);
    if (key === 'Z-Map2') {
      // Binary map entries follow the line directly (gzip-inside files); skip them unread.
      zMapEntries = parseCount(value, key);
      pos += 4 * zMapEntries;
      if (pos > bytes.length) throw bad(`Z-Map2 announces ${zMapEntries} entries but the file ends first`);
    }
  }
  return interpretHeaders(headers, bytes.subarray(pos), zMapEntries, headerOnly);
}

function splitHeaderLine(line: Uint8Array, lineNo: number): [string, string] {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0d || line[end - 1] === 0x20)) end--;
  for (let i = 0; i < end; i++) {
    const c = line[i]!;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      throw bad(`header line ${lineNo} contains the control byte 0x${c.toString(16).padStart(2, '0')}: binary data where text was expected`, { line: lineNo });
    }
  }
  let text: string;
  try {
    text = utf8.decode(line.subarray(0, end));
  } catch {
    throw bad(`header line ${lineNo} is not valid UTF-8 text`, { line: lineNo });
  }
  const colon = text.indexOf(': ');
  if (colon <= 0) {
    const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw bad(lineNo === 1 ? `not a zsync control file (first line: ${JSON.stringify(shown)})` : `header line ${lineNo} is not "Key: value": ${JSON.stringify(shown)}`, { line: lineNo });
  }
  return [text.slice(0, colon), text.slice(colon + 2)];
}

function parseCount(value: string, key: string): number {
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw bad(`${key} must be a whole number of bytes, got ${JSON.stringify(value)}`, { header: key });
  return Number(value);
}

// zsync 0.6.2 reads the three numbers with sscanf, so spaces around them pass; so do they here.
function parseHashLengths(value: string, strongHash: StrongHashName): HashLengths {
  const m = /^\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*$/.exec(value);
  if (!m) throw bad(`Hash-Lengths must be "seq,rsum,strong", got ${JSON.stringify(value)}`);
  const [seq, rsum, strong] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (seq < 1 || seq > 2) throw bad(`Hash-Lengths: sequence matches must be 1 or 2, got ${seq}`);
  if (rsum < 1 || rsum > 4) throw bad(`Hash-Lengths: weak checksum bytes must be 1..4, got ${rsum}`);
  // Below 3 bytes a wrong block would pass its check too often (0.6.2's lower bound too); above
  // the digest there is nothing to store.
  const most = DIGEST_BYTES[strongHash];
  if (strong < 3 || strong > most) throw bad(`Hash-Lengths: strong checksum bytes must be 3..${most} for ${strongHash}, got ${strong}`);
  return { seqMatches: seq as 1 | 2, rsumBytes: rsum, checksumBytes: strong };
}

function parseFileHash(value: string): { algorithm: string; hex: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_-]*):([0-9a-fA-F]+)$/.exec(value.trim());
  if (!m) throw bad(`File-Hash must be "ALGORITHM:hex", got ${JSON.stringify(value)}`);
  const algorithm = m[1]!.toUpperCase();
  const hex = m[2]!.toLowerCase();
  const want = FILE_HASH_HEX[algorithm];
  if (want !== undefined && hex.length !== want) throw bad(`File-Hash ${algorithm} must be ${want} hex digits, got ${hex.length}`);
  return { algorithm, hex };
}

function interpretHeaders(headers: Array<[string, string]>, records: Uint8Array, zMapEntries: number | undefined, headerOnly = false): ControlFile {
  let zsyncVersion: string | undefined;
  let filename: string | undefined;
  let mtime: number | undefined;
  let blockSize: number | undefined;
  let length: number | undefined;
  let hashLengthsText: string | undefined;
  let strongHash: StrongHashName | undefined;
  let fileHash: { algorithm: string; hex: string } | undefined;
  const notes: string[] = [];
  let sha1: string | undefined;
  let safe: string | undefined;
  const urls: string[] = [];
  const zUrls: string[] = [];
  let zFilename: string | undefined;
  let recompress: string | undefined;
  const extraHeaders: Array<[string, string]> = [];

  for (const [key, value] of headers) {
    switch (key) {
      case 'zsync':
        if (value === '0.0.4') throw bad('zsync 0.0.4 control files are not supported');
        zsyncVersion = value;
        break;
      case 'Min-Version':
        if (value > READS_VERSION) throw new ZpumpError('E_UNSUPPORTED', `control file needs zsync ${value} or newer (Min-Version); zpump reads formats up to ${READS_VERSION}`);
        extraHeaders.push([key, value]);
        break;
      case 'Filename': filename = value; break;
      case 'Z-Filename': zFilename = value; break;
      case 'MTime':
        // zsync 0.6.2 ignores an MTime it cannot parse; the file's time is then simply not set.
        mtime = parseMTime(value);
        if (mtime === undefined) notes.push(`MTime ${JSON.stringify(value)} is not an RFC 2822 date: ignored, as zsync 0.6.2 does`);
        break;
      case 'Blocksize':
        blockSize = parseCount(value, key);
        if (!isPowerOfTwo(blockSize) || blockSize > MAX_BLOCK_SIZE) throw bad(`Blocksize must be a power of two up to ${MAX_BLOCK_SIZE} (64 MiB: each block is held in memory whole), got ${value}`);
        break;
      case 'Length': length = parseCount(value, key); break;
      case 'Hash-Lengths': hashLengthsText = value; break;
      case 'Strong-Hash-Algorithm':
        strongHash = strongHashNamed(value);
        if (!strongHash) throw new ZpumpError('E_UNSUPPORTED', `control file uses the strong hash ${JSON.stringify(value)}; zpump reads MD4, MD5 and SHA-224 (spec 0.8)`, { data: { header: key } });
        break;
      case 'File-Hash':
        fileHash = parseFileHash(value);
        if (FILE_HASH_HEX[fileHash.algorithm] === undefined) notes.push(`File-Hash uses ${fileHash.algorithm}, which zpump cannot compute: the result is not verified against it`);
        break;
      case 'URL': urls.push(value); break;
      case 'Z-URL': zUrls.push(value); break;
      case 'SHA-1':
        if (!/^[0-9a-fA-F]{40}$/.test(value)) throw bad(`SHA-1 must be 40 hex digits, got ${JSON.stringify(value)}`);
        sha1 = value.toLowerCase();
        break;
      case 'Safe': safe = value; break;
      case 'Recompress': recompress = value; break;
      case 'Z-Map2': break;
      default:
        // zsync 0.6.2 refuses unknown headers unless an earlier Safe: names them; so do we.
        if (safe === undefined || !safe.includes(key)) {
          throw new ZpumpError('E_UNSUPPORTED', `control file has the header "${key}", which zsync 0.6.2 does not know and Safe: does not cover; it was made by a newer zsync`, { data: { header: key } });
        }
        extraHeaders.push([key, value]);
    }
  }
  if (zsyncVersion === undefined) throw bad('no "zsync:" header: not a zsync control file');
  if (blockSize === undefined) throw bad('no Blocksize header');
  if (length === undefined) throw bad('no Length header');
  // Spec 0.8: absent Hash-Lengths means 1,4 and the whole digest (16 for zsync 0.6.2's MD4).
  const hashLengths = hashLengthsText === undefined
    ? { seqMatches: 1 as const, rsumBytes: 4, checksumBytes: DIGEST_BYTES[strongHash ?? 'MD4'] }
    : parseHashLengths(hashLengthsText, strongHash ?? 'MD4');
  const geometry = geometryProblem(length, blockSize);
  if (geometry) throw bad(`${geometry}: the engines cannot hold this file`, { length, blockSize });

  const count = blockCount(length, blockSize);
  const recLen = recordLength(hashLengths);
  const needed = count * recLen;
  const gzip = zMapEntries !== undefined ? { zUrls, zFilename, recompress, zMapEntries } : undefined;
  if (headerOnly) records = new Uint8Array(0);
  else if (records.length < needed) {
    throw bad(`truncated: Length ${length} and Blocksize ${blockSize} need ${count} records of ${recLen} bytes (${needed} bytes), but only ${records.length} bytes follow the header`, { expected: needed, actual: records.length });
  }
  // Records are counted from Length and Blocksize, as zsync 0.6.2 and upstream 0.7 do; whatever
  // follows (gzip-inside's junk record, a stray newline in upstream's own test data) is ignored.
  const allowedExtra = gzip ? recLen : 0;
  if (!headerOnly && records.length > needed + allowedExtra) {
    notes.push(`${records.length - needed} bytes after the ${count} block records that Length ${length} and Blocksize ${blockSize} call for: ignored, as zsync does`);
  }
  const cf: ControlFile = { zsyncVersion, blockSize, length, hashLengths, urls, extraHeaders, records: headerOnly ? records : records.subarray(0, needed) };
  if (strongHash !== undefined) cf.strongHash = strongHash;
  if (fileHash !== undefined) cf.fileHash = fileHash;
  if (notes.length > 0) cf.notes = notes;
  if (filename !== undefined) cf.filename = filename;
  if (mtime !== undefined) cf.mtime = mtime;
  if (sha1 !== undefined) cf.sha1 = sha1;
  if (safe !== undefined) cf.safe = safe;
  if (gzip) cf.gzip = gzip;
  return cf;
}
