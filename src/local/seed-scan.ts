// Streams seed files through the matcher in fixed windows (constant memory), then tries each
// still-missing block where it most likely sits: at its own offset (data rewritten in place)
// and at the offsets its matched neighbours moved by. zsync 0.6.2 with seq_matches 2 misses
// such isolated blocks; finding them is what makes large blocks usable with scattered edits.

import { open, type FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import type { SeedMatcher } from '../engine/matcher.js';
import { md4Padded, type Md4 } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import { fromSystemError } from '../errors.js';
import type { ParallelScan } from './parallel-scan.js';

const WINDOW = 4 << 20; // small: RSS must stay under 96 MB

export type BlockSink = (id: number, buf: Uint8Array, pos: number) => void;

export interface SeedScanner {
  index: BlockIndex;
  matcher: SeedMatcher;
  md4: Md4;
  /** Where each found block came from in the current seed, minus its target offset. */
  shift: Float64Array;
  sink: BlockSink;
  /**
   * The output is a new file that reads as zeros where nothing was written: blocks of zeros (sparse
   * regions, fill) are not written, so a sparse target stays sparse and costs no disk writes.
   */
  outputStartsZero?: boolean;
  /** Worker threads scanning parts of each seed (local/parallel-scan.ts); none: this thread. */
  parallel?: ParallelScan;
  onProgress?: (seedBytesDone: number, seedBytesTotal: number) => void;
  /** Work done, for tests (counted, never timed). */
  work?: { ownOffsetBlocks: number };
}

export async function scanSeedFile(path: string, scanner: SeedScanner): Promise<void> {
  const s = scanner.outputStartsZero ? { ...scanner, sink: skippingZeros(scanner.sink, scanner.index) } : scanner;
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the seed', path);
  }
  // Blocks the slide saw at their own offset with another weak sum: not read there again.
  const ownMiss = new Uint8Array((s.index.count + 7) >>> 3);
  try {
    s.shift.fill(NaN);
    s.matcher.resetSeed();
    s.matcher.ownMiss = ownMiss;
    await slide(fh, path, s);
    s.matcher.ownMiss = undefined;
    if (!s.matcher.complete) await tryLikelyOffsets(fh, s, ownMiss);
  } finally {
    s.matcher.ownMiss = undefined;
    await fh.close();
  }
}

async function slide(fh: FileHandle, path: string, s: SeedScanner): Promise<void> {
  const size = (await fh.stat()).size;
  if (s.parallel && (await s.parallel.scan(fh, path, size, s))) return;
  const B = s.index.blockSize;
  await scanRange(fh, path, size, s.matcher, 0, size, (id, buf, pos, at) => {
    s.shift[id] = at - id * B;
    s.sink(id, buf, pos);
  }, (done) => s.onProgress?.(done, size));
}

/** A scan's buffers, kept for the next scan (a worker's next part) instead of left to the GC. */
export interface ScanBuffers {
  window?: Uint8Array;
  pieces?: [Uint8Array, Uint8Array];
}

/**
 * Scan window starts [from, to) of a seed of `size` bytes with `matcher`, reading only the bytes
 * those windows need (to + seq_matches·B, zero-padded past the seed's end, as zsync does).
 * `at` is the block's offset in the seed. Returns where the scan stopped (>= to unless complete).
 * `piece`: bytes per read (worker threads read less at a time: each buffer is RSS per thread).
 */
export async function scanRange(
  fh: FileHandle, path: string, size: number, matcher: SeedMatcher, from: number, to: number,
  onBlock: (id: number, buf: Uint8Array, pos: number, at: number) => void,
  onProgress?: (done: number) => void,
  piece = WINDOW,
  reuse?: ScanBuffers,
): Promise<number> {
  const B = matcher.blockSize;
  const ctx = matcher.seqMatches * B;
  const readEnd = Math.min(size, to + ctx);
  const window = Math.max(piece, 2 * ctx);
  const buffers = reuse ?? {};
  if (buffers.window?.length !== window + ctx) buffers.window = new Uint8Array(window + ctx);
  if (buffers.pieces?.[0].length !== piece) buffers.pieces = [new Uint8Array(piece), new Uint8Array(piece)];
  const buf = buffers.window;
  const reader = new ReadAhead(fh, readEnd, piece, buffers.pieces);
  let base = from; // file offset of buf[0]
  let len = 0; // valid bytes in buf
  let pos = 0; // next window start, relative to buf
  const found = (id: number, at: number): void => onBlock(id, buf, at, base + at);
  while (base + pos < to && !matcher.complete) {
    while (len < window && base + len < readEnd) {
      let n: number;
      try {
        n = await reader.read(buf, len, Math.min(window - len, readEnd - base - len), base + len);
      } catch (error) {
        throw fromSystemError(error, 'cannot read the seed', path);
      }
      if (n === 0) break;
      len += n;
    }
    const atEnd = base + len >= readEnd;
    // After the seed's last byte the windows see zeros, as zsync pads its buffer.
    if (atEnd) buf.fill(0, len, len + ctx);
    const limit = Math.min(atEnd ? len : len - ctx, to - base);
    pos = matcher.scan(buf, pos, limit, found, base);
    onProgress?.(Math.min(to, base + pos));
    if (atEnd || base + pos >= to) break;
    if (pos < len) {
      buf.copyWithin(0, pos, len);
      base += pos;
      len -= pos;
    } else {
      base += pos;
      len = 0;
    }
    pos = 0;
  }
  return base + pos;
}

const ZEROS = new Uint8Array(64 << 10);

/** Are buf[pos, pos + len) all zero bytes? (memcmp against zeros, a piece at a time) */
export function isAllZero(buf: Uint8Array, pos: number, len: number): boolean {
  if (len > 0 && buf[pos] !== 0) return false;
  for (let at = 0; at < len; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, len - at);
    if (Buffer.compare(ZEROS.subarray(0, n), buf.subarray(pos + at, pos + at + n)) !== 0) return false;
  }
  return true;
}

function skippingZeros(sink: BlockSink, index: BlockIndex): BlockSink {
  const B = index.blockSize;
  const zero = zeroTest();
  return (id, buf, pos) => {
    if (!zero(buf, pos, Math.min(B, index.length - id * B))) sink(id, buf, pos);
  };
}

/**
 * isAllZero, remembering its last answers: one lookup hands over every identical block from the
 * same place (thousands of zero blocks from one window), and each would be compared again.
 */
export function zeroTest(): (buf: Uint8Array, pos: number, len: number) => boolean {
  const memo: Array<{ buf?: Uint8Array; pos: number; len: number; zero: boolean }> = [{ pos: -1, len: 0, zero: false }, { pos: -1, len: 0, zero: false }];
  let turn = 0;
  return (buf, pos, len) => {
    for (const m of memo) if (m.buf === buf && m.pos === pos && m.len === len) return m.zero;
    const m = memo[turn]!;
    turn ^= 1;
    m.buf = buf;
    m.pos = pos;
    m.len = len;
    m.zero = isAllZero(buf, pos, len);
    return m.zero;
  };
}

/**
 * Sequential reads with the next piece already on its way: the disk (or the page cache through
 * the thread pool) works while the matcher scans, instead of the two taking turns.
 */
class ReadAhead {
  private current: Piece;
  private pending: Promise<Piece> | undefined;
  private readonly free: Uint8Array[];

  constructor(private readonly fh: FileHandle, private readonly size: number, private readonly piece: number, pieces: [Uint8Array, Uint8Array]) {
    this.current = { buf: pieces[0], start: 0, len: 0 };
    this.free = [pieces[1]];
  }

  /** Copy up to `length` bytes at `position` into dst[at...]; 0 at the end of the file. */
  async read(dst: Uint8Array, at: number, length: number, position: number): Promise<number> {
    if (position < this.current.start || position >= this.current.start + this.current.len) {
      const ahead = this.pending ? await this.pending : undefined; // never two reads into one buffer
      this.pending = undefined;
      if (ahead && position >= ahead.start && position < ahead.start + ahead.len) {
        this.free.push(this.current.buf);
        this.current = ahead;
      } else {
        if (ahead) this.free.push(ahead.buf);
        const buf = this.current.buf;
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(this.piece, this.size - position), position);
        this.current = { buf, start: position, len: bytesRead };
      }
      if (this.current.len === 0) return 0;
      const next = this.current.start + this.current.len;
      const buf = this.free.pop();
      if (buf && next < this.size) {
        this.pending = this.fh.read(buf, 0, Math.min(this.piece, this.size - next), next).then(({ bytesRead }) => ({ buf, start: next, len: bytesRead }));
        this.pending.catch(() => undefined); // reported when the piece is asked for
      } else if (buf) this.free.push(buf);
    }
    const c = this.current;
    const n = Math.min(length, c.start + c.len - position);
    dst.set(c.buf.subarray(position - c.start, position - c.start + n), at);
    return n;
  }
}

interface Piece {
  buf: Uint8Array;
  start: number;
  len: number;
}

async function tryLikelyOffsets(fh: FileHandle, s: SeedScanner, ownMiss: Uint8Array): Promise<void> {
  const { index } = s;
  const B = index.blockSize;
  const size = (await fh.stat()).size;
  // The shifts of the nearest found blocks before and after each block (NaN: none).
  const after = new Float64Array(index.count + 1).fill(NaN);
  for (let id = index.count - 1; id >= 0; id--) after[id] = Number.isNaN(s.shift[id]!) ? after[id + 1]! : s.shift[id]!;
  // Runs of missing blocks at their own offsets, read in large pieces (in-place rewrites); not
  // those the slide already ruled out there (unrelated data: nothing is read again).
  const ruledOut = (id: number): boolean => (ownMiss[id >>> 3]! & (1 << (id & 7))) !== 0;
  const buf = new Uint8Array(Math.max(B, Math.floor((4 << 20) / B) * B));
  const perRead = buf.length / B;
  for (let id = 0; id < index.count && !s.matcher.complete; ) {
    if (s.matcher.known[id] || ruledOut(id)) { id++; continue; }
    let end = id;
    while (end < index.count && end - id < perRead && !s.matcher.known[end] && !ruledOut(end)) end++;
    const from = id * B;
    if (from >= size) break;
    const { bytesRead } = await fh.read(buf, 0, Math.min((end - id) * B, size - from), from);
    if (s.work) s.work.ownOffsetBlocks += end - id;
    for (let k = id; k < end; k++) tryBlock(s, k, buf, (k - id) * B, bytesRead - (k - id) * B, 0);
    id = end;
  }
  // Then where the neighbours moved to (an insertion or deletion nearby), one read per block.
  const block = new Uint8Array(B);
  let before = NaN;
  for (let id = 0; id < index.count && !s.matcher.complete; id++) {
    if (!Number.isNaN(s.shift[id]!)) { before = s.shift[id]!; continue; }
    if (s.matcher.known[id]) continue;
    for (const shift of [before, after[id]!]) {
      if (Number.isNaN(shift) || shift === 0 || s.matcher.known[id]) continue;
      const at = id * B + shift;
      if (at < 0 || at >= size) continue;
      const { bytesRead } = await fh.read(block, 0, B, at);
      tryBlock(s, id, block, 0, bytesRead, shift);
    }
  }
}

/** Is target block `id` at buf[pos, pos + available)? If so, take it. */
function tryBlock(s: SeedScanner, id: number, buf: Uint8Array, pos: number, available: number, shift: number): void {
  const { index } = s;
  const B = index.blockSize;
  const blockLen = Math.min(B, index.length - id * B);
  if (available < blockLen) return;
  // The last block is compared with its zero padding, as its record was made.
  if ((weakSumPadded(buf, pos, pos + blockLen, B) & index.mask) !== index.weak[id]) return;
  if (!index.strongMatches(id, md4Padded(s.md4, buf, pos, pos + blockLen, B))) return;
  s.matcher.markKnown(id);
  s.shift[id] = shift;
  s.sink(id, buf, pos);
}
