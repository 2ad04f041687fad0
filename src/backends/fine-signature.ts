// The fine .zsync of a two-level message, read piecemeal: its header (a first piece, longer if the
// header is), then only the records the plan asks for, in as few requests as the transport makes of
// the ranges. Its identity cannot be checked from pieces, so the header must describe the very file
// the coarse signature does (same Length and SHA-1 / File-Hash) and the announced geometry (block
// size, file size): a fine file rewritten since the message, cut short or for another file is
// refused here, and the caller falls back to the coarse level.

import { ZpumpError } from '../errors.js';
import { parseControlFileHeader, recordLength, type ControlFile } from '../format/control-file.js';
import { blockCount, isPowerOfTwo } from '../format/hash-lengths.js';
import { MAX_HEADER_BYTES } from '../format/control-file.js';
import { cappedSize, MAX_REFERENCED_SIGNATURE_BYTES } from '../format/url-policy.js';
import { recordRanges } from '../engine/fine-plan.js';
import { openRangeSource, type OpenOptions } from '../transport/open.js';
import type { ByteRange, RangeSource } from '../transport/types.js';

/** Where the fine signature is and what the message says about it. */
export interface FineSignatureRef {
  /** Absolute URL, already through format/url-policy's check. */
  url: string;
  size: number;
  blockSize: number;
}

export interface FineRecords {
  /** The fine control file, with a full-size records array in which only the fetched records are filled. */
  control: ControlFile;
  /** Bytes and requests spent on the fine file. */
  bytes: number;
  requests: number;
  /** Records fetched (needed ones plus each run's successor). */
  records: number;
}

/** Bytes of the first header piece: zsyncmake's headers are ~250 bytes, a few URLs included. */
export const FIRST_PIECE = 4096;
/** Fine blocks beyond this are not indexed (memory): such files sync at the coarse level. */
export const MAX_FINE_BLOCKS = 1 << 21;

const stale = (url: string, why: string): ZpumpError => new ZpumpError('E_BAD_CONTROL', `the fine signature ${url} ${why}`);

export async function fetchFineRecords(
  ref: FineSignatureRef,
  coarse: ControlFile,
  neededFor: (fine: ControlFile) => Uint8Array,
  transport: OpenOptions | undefined,
  spent: { bytes: number; requests: number },
): Promise<FineRecords & { needed: Uint8Array }> {
  const size = cappedSize(ref.size, MAX_REFERENCED_SIGNATURE_BYTES, 'zsync.fine.size');
  if (!isPowerOfTwo(ref.blockSize) || ref.blockSize > coarse.blockSize || coarse.blockSize % ref.blockSize !== 0) {
    throw stale(ref.url, `has block size ${ref.blockSize}, which does not divide the coarse ${coarse.blockSize}`);
  }
  const source = await openRangeSource(ref.url, transport);
  try {
    const { control, headerLength, bytes: first } = await readHeader(source, ref, size, spent);
    sameFile(ref, coarse, control);
    const count = blockCount(control.length, control.blockSize);
    const recLen = recordLength(control.hashLengths);
    if (headerLength + count * recLen !== size) throw stale(ref.url, `should be ${headerLength + count * recLen} bytes by its header, the message says ${size}`);
    const needed = neededFor(control);
    // Shared memory: the threads that check blocks read the records where they are (local/parallel-places.ts).
    const records = new Uint8Array(new SharedArrayBuffer(count * recLen));
    // Records the header piece already brought are used as they are, not asked for again.
    const had = Math.min(count, Math.floor((first.length - headerLength) / recLen));
    records.set(first.subarray(headerLength, headerLength + had * recLen));
    const ranges = recordRanges(needed, headerLength, recLen).flatMap((r) => {
      const start = Math.max(r.start, headerLength + had * recLen);
      return start < r.end ? [{ start, end: r.end }] : [];
    });
    let fetched = 0;
    if (ranges.length > 0) {
      const stats = await source.readRanges(ranges, (chunk) => {
        records.set(chunk.data, chunk.offset - headerLength);
      });
      spent.bytes += stats.bytesReceived;
      spent.requests += stats.requests;
      for (const r of ranges) fetched += (r.end - r.start) / recLen;
    }
    return { control: { ...control, records }, bytes: spent.bytes, requests: spent.requests, records: fetched, needed };
  } finally {
    await source.close();
  }
}

/**
 * A fine signature the caller already holds whole (fetched once to be kept for the next version
 * and checked against its identity in the message, pump/signature-reuse.ts): the same checks as
 * fetchFineRecords makes of a header, and no record fetched again.
 */
export function fineFromWhole(
  ref: FineSignatureRef,
  coarse: ControlFile,
  whole: ControlFile,
  neededFor: (fine: ControlFile) => Uint8Array,
): FineRecords & { needed: Uint8Array } {
  if (!isPowerOfTwo(ref.blockSize) || ref.blockSize > coarse.blockSize || coarse.blockSize % ref.blockSize !== 0) {
    throw stale(ref.url, `has block size ${ref.blockSize}, which does not divide the coarse ${coarse.blockSize}`);
  }
  sameFile(ref, coarse, whole);
  // Shared memory: the threads that check blocks read the records where they are.
  const records = new Uint8Array(new SharedArrayBuffer(whole.records.length));
  records.set(whole.records);
  return { control: { ...whole, records }, bytes: 0, requests: 0, records: 0, needed: neededFor(whole) };
}

/** Refuses a fine signature for another file, version or geometry than the coarse one and the message say. */
function sameFile(ref: FineSignatureRef, coarse: ControlFile, control: ControlFile): void {
  if (control.gzip) throw stale(ref.url, 'describes gzip-inside data');
  if (control.length !== coarse.length) throw stale(ref.url, `describes ${control.length} bytes, the coarse signature ${coarse.length}: it was published again since the message`);
  const sameSha1 = control.sha1 !== undefined && control.sha1 === coarse.sha1;
  const sameFileHash = control.fileHash !== undefined && coarse.fileHash !== undefined && control.fileHash.algorithm === coarse.fileHash.algorithm && control.fileHash.hex === coarse.fileHash.hex;
  if (!sameSha1 && !sameFileHash) throw stale(ref.url, 'names another SHA-1 than the coarse signature (or none): it was published again since the message');
  if (control.blockSize !== ref.blockSize) throw stale(ref.url, `has block size ${control.blockSize}, the message says ${ref.blockSize}`);
  const count = blockCount(control.length, control.blockSize);
  if (count > MAX_FINE_BLOCKS) throw stale(ref.url, `has ${count} blocks, more than zpump indexes (${MAX_FINE_BLOCKS})`);
}

/** The header, and every byte read to get it (the first records come along). */
async function readHeader(source: RangeSource, ref: FineSignatureRef, size: number, spent: { bytes: number; requests: number }): Promise<{ control: ControlFile; headerLength: number; bytes: Uint8Array }> {
  let bytes = new Uint8Array(0);
  for (const want of [FIRST_PIECE, MAX_HEADER_BYTES]) {
    const end = Math.min(size, want);
    if (end <= bytes.length) continue;
    const more = new Uint8Array(end);
    more.set(bytes);
    const range: ByteRange = { start: bytes.length, end };
    const stats = await source.readRanges([range], (chunk) => { more.set(chunk.data, chunk.offset); });
    spent.bytes += stats.bytesReceived;
    spent.requests += stats.requests;
    bytes = more;
    let parsed;
    try {
      parsed = parseControlFileHeader(bytes);
    } catch (error) {
      // Never quote it: a hostile message could point at a local secret and read it back from the log.
      if (!(error instanceof ZpumpError)) throw error;
      throw stale(ref.url, `is not a usable .zsync header (${bytes.length} bytes read; content not shown)`);
    }
    if (parsed) return { ...parsed, bytes };
  }
  throw stale(ref.url, `has no complete header in its ${bytes.length} bytes: truncated, or not a .zsync file`);
}
