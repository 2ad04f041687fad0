// The target's blocks, indexed by weak sum for the seed scan: typed arrays only (no Map, no
// object per block), sized to the block count — zsync 0.6.2's fixed-size table is why it
// crawls on unrelated data with small blocks.
//
// The arrays live in SharedArrayBuffers so worker threads scanning parts of a seed
// (local/parallel-scan.ts) read this thread's copy instead of building their own (at 2 KiB blocks
// a 1 GiB target has 524 288 blocks: a copy each would not fit the RSS budget). Only removals are
// ever written while workers read: this thread unlinks blocks it has found from the chains (a
// worker then skips a block the one-thread scan would skip too) and rebuilds its filter into a new
// array; a worker never writes the shared heads or links (it takes a copy of the links once
// skipping found blocks costs more than the copy), so what it finds speculatively never hides a
// candidate from this thread.

import type { ControlFile } from '../format/control-file.js';
import { weakMask } from './rsum.js';

/** What a worker thread needs to read a BlockIndex built elsewhere (shared, not copied). */
export interface SharedBlockIndex {
  blockSize: number;
  length: number;
  hashLengths: ControlFile['hashLengths'];
  records: SharedArrayBuffer;
  weak: SharedArrayBuffer;
  head: SharedArrayBuffer;
  next: SharedArrayBuffer;
  filter: SharedArrayBuffer;
}

/**
 * The filter is a Bloom filter blocked to one 32-bit word per window: the pair's hash picks a word
 * (its top bits) and one of these masks of 4 bits (its low 10 bits), so a probe is one load and
 * one compare. At 32–64 bits per block, unrelated data gets through about once in 450 bytes;
 * a second table (8–16 bits a block, filterHash2) lets through about one in 20 of those again
 * before a lookup (one bit per block, as before, let 1 in 16 through: a lookup, with its cache
 * misses one after the other, every 16 bytes was most of the scan's time).
 */
export const FILTER_MASKS = filterMasks();

function filterMasks(): Int32Array {
  const masks = new Int32Array(1024);
  let s = 0x2545f491;
  for (let i = 0; i < masks.length; i++) {
    let m = 0;
    // Four distinct bits: fewer would let more windows through.
    while (popcount(m) < 4) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      m |= 1 << (s & 31);
    }
    masks[i] = m;
  }
  return masks;
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x &= x - 1) n++;
  return n;
}

/** The filter hash of a window's (masked weak sum, next window's masked weak sum or 0). */
export function filterHash(s0: number, s1: number): number {
  const h = Math.imul(s0 ^ Math.imul(s1, 0x85ebca6b), 0x9e3779b1);
  return h ^ (h >>> 15);
}

/**
 * A second, independent hash of the pair: a window through the first word is tested against a
 * second before it costs a lookup (chains, weak sums, found flags: cache misses one after the
 * other, ~0.5 µs). Each block sets bits in both words.
 */
export function filterHash2(s0: number, s1: number): number {
  const h = Math.imul(s1 ^ Math.imul(s0, 0xc2b2ae35), 0x27d4eb2f);
  return h ^ (h >>> 16);
}

const MAX_FILTER_WORDS = 1 << 21; // 8 MiB; the word index must leave the hash's low 10 bits alone

export class BlockIndex {
  readonly count: number;
  readonly length: number;
  readonly blockSize: number;
  readonly mask: number; // applied to a computed weak sum before comparing with a record
  readonly checksumBytes: number;
  readonly seqMatches: 1 | 2;
  /** Masked weak sum of each block, as stored in its record; int32 so the scan stays in small ints. */
  readonly weak: Int32Array;
  /** The records, for the MD4 prefixes. */
  private readonly records: Uint8Array;
  private readonly recLen: number;
  private readonly rsumBytes: number;
  private readonly head: Int32Array;
  private readonly sharedNext: Int32Array;
  /** Chain links as this thread sees them: the shared ones, or (a worker) its own copy. */
  private next: Int32Array;
  // A worker reads the shared links until skipping found blocks it cannot unlink has cost about
  // what a copy of its own costs (RSS only where found blocks keep coming back).
  private skips = 0;
  /** May this thread unlink a chain's first block (write the shared heads)? Not a worker. */
  readonly ownsHeads: boolean;
  private readonly bits: number;
  private readonly sharedFilter: Int32Array;
  /** Blocked Bloom filter of the pairs (FILTER_MASKS): a cheap "certainly not" at each byte. */
  filter: Int32Array;
  /** 32 - log2(filter words): the filter word of hash h is h >>> filterShift. */
  readonly filterShift: number;
  /** The second words (filterHash2) follow the first, a quarter as many: filter[second + (g >>> secondShift)]. */
  readonly second: number;
  readonly secondShift: number;
  private readonly buffers: Omit<SharedBlockIndex, 'blockSize' | 'length' | 'hashLengths' | 'records'>;

  constructor(cf: Pick<ControlFile, 'blockSize' | 'length' | 'hashLengths' | 'records'>, shared?: SharedBlockIndex) {
    const h = cf.hashLengths;
    this.count = Math.ceil(cf.length / cf.blockSize);
    this.length = cf.length;
    this.blockSize = cf.blockSize;
    this.mask = weakMask(h.rsumBytes) | 0;
    this.checksumBytes = h.checksumBytes;
    this.seqMatches = h.seqMatches;
    this.records = cf.records;
    this.recLen = h.rsumBytes + h.checksumBytes;
    this.rsumBytes = h.rsumBytes;
    // One bucket per one or two blocks, a power of two: the filter sends few windows to a lookup,
    // so a chain of two costs less than the RSS of twice the buckets (1 MiB at 524 288 blocks).
    this.bits = Math.max(4, Math.floor(Math.log2(Math.max(1, this.count))));
    const words = Math.min(MAX_FILTER_WORDS, 2 ** Math.max(6, Math.ceil(Math.log2(Math.max(1, this.count)))));
    this.filterShift = 32 - Math.log2(words);
    this.second = words;
    this.secondShift = this.filterShift + 2;
    this.buffers = shared ?? {
      weak: new SharedArrayBuffer(4 * this.count),
      head: new SharedArrayBuffer(4 << this.bits),
      next: new SharedArrayBuffer(4 * this.count),
      filter: new SharedArrayBuffer(4 * (words + words / 4)),
    };
    this.weak = new Int32Array(this.buffers.weak);
    this.head = new Int32Array(this.buffers.head);
    this.sharedNext = new Int32Array(this.buffers.next);
    this.sharedFilter = new Int32Array(this.buffers.filter);
    this.next = this.sharedNext;
    this.filter = this.sharedFilter;
    this.ownsHeads = shared === undefined;
    if (shared) return;
    for (let i = 0; i < this.count; i++) {
      let v = 0;
      const o = i * this.recLen;
      for (let k = 0; k < h.rsumBytes; k++) v = (v << 8) | this.records[o + k]!;
      this.weak[i] = v | 0;
    }
    this.link();
  }

  /** The buffers a worker thread needs (`records`: the control file's, in shared memory). */
  share(records: SharedArrayBuffer, hashLengths: ControlFile['hashLengths']): SharedBlockIndex {
    return { blockSize: this.blockSize, length: this.length, hashLengths, records, ...this.buffers };
  }

  /**
   * (Re)build the chains with every block and the filter with the blocks `known` lacks. Not while
   * workers read this index (it rewrites what they share): only before a scan starts.
   */
  link(known?: Uint8Array): void {
    this.head.fill(-1);
    // Insert in descending order so each chain lists blocks in ascending id order.
    for (let i = this.count - 1; i >= 0; i--) {
      const b = this.bucket(this.weak[i]!);
      this.next[i] = this.head[b]!;
      this.head[b] = i;
    }
    this.fillFilter(this.filter, known);
  }

  /**
   * A worker's next part starts from the shared chains and filter again (as this thread's owner
   * has pruned them: only of blocks found there, which the part's snapshot of found blocks holds).
   */
  restart(): void {
    this.next = this.sharedNext;
    this.skips = 0;
    this.filter = this.sharedFilter;
  }

  private fillFilter(filter: Int32Array, known?: Uint8Array): void {
    filter.fill(0);
    const seq2 = this.seqMatches === 2;
    const N = this.count;
    const shift = this.filterShift;
    for (let i = 0; i < N; i++) {
      if (known?.[i]) continue;
      const s1 = seq2 && i + 1 < N ? this.weak[i + 1]! : 0;
      const f = filterHash(this.weak[i]!, s1);
      filter[f >>> shift]! |= FILTER_MASKS[f & 1023]!;
      const g = filterHash2(this.weak[i]!, s1);
      filter[this.second + (g >>> this.secondShift)]! |= FILTER_MASKS[g & 1023]!;
    }
  }

  /** Might a window with these masked weak sums (s1: the next window's, or 0) be a missing block? */
  mayHold(s0: number, s1: number): boolean {
    const f = filterHash(s0, s1);
    const m = FILTER_MASKS[f & 1023]!;
    if ((this.filter[f >>> this.filterShift]! & m) !== m) return false;
    const g = filterHash2(s0, s1);
    const n = FILTER_MASKS[g & 1023]!;
    return (this.filter[this.second + (g >>> this.secondShift)]! & n) === n;
  }

  bucket(stored: number): number {
    return Math.imul(stored, 0x9e3779b1) >>> (32 - this.bits);
  }

  /**
   * Take a found block out of its chain (`prev`: the entry before it, or -1 at the head): a long
   * run of already-found identical blocks must not be walked again at every byte. A worker
   * cannot unlink a chain's first block (the heads are shared), nor anything before it has links
   * of its own: false, the block stays, a step to skip.
   */
  unlink(bucket: number, prev: number, id: number): boolean {
    if (!this.ownsHeads && this.next === this.sharedNext) {
      if (++this.skips < (this.count >>> 2) + 1024) return false;
      this.next = this.sharedNext.slice();
    }
    if (prev >= 0) this.next[prev] = this.next[id]!;
    else if (this.ownsHeads) this.head[bucket] = this.next[id]!;
    else return false;
    return true;
  }

  /** Rebuild the filter from the blocks still missing, so found ones stop letting windows through. */
  rebuildFilter(known: Uint8Array): void {
    // Into a new array: workers may be reading the old one (they get a superset, which is safe).
    const filter = this.filter === this.sharedFilter ? new Int32Array(this.filter.length) : this.filter;
    this.fillFilter(filter, known);
    this.filter = filter;
  }

  first(bucket: number): number {
    return this.head[bucket]!;
  }

  following(id: number): number {
    return this.next[id]!;
  }

  /** Does `digest` (a full MD4) start with block `id`'s stored prefix? */
  strongMatches(id: number, digest: Uint8Array): boolean {
    const o = id * this.recLen + this.rsumBytes;
    for (let k = 0; k < this.checksumBytes; k++) if (digest[k] !== this.records[o + k]) return false;
    return true;
  }
}
