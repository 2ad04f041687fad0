// The target's blocks, indexed by weak sum for the seed scan: typed arrays only (no Map, no
// object per block), sized to the block count — zsync 0.6.2's fixed-size table is why it
// crawls on unrelated data with small blocks.

import type { ControlFile } from '../format/control-file.js';
import { weakMask } from './rsum.js';

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
  private readonly next: Int32Array;
  private readonly bits: number;
  /**
   * A bit per hash of (weak sum, successor's weak sum) — or of the weak sum alone when
   * seq_matches is 1 — for every block: a cheap "certainly not" at each byte of the scan.
   * 16 bits per block keep false hits near 1/16 even on unrelated data.
   */
  readonly filter: Uint8Array;
  readonly filterBits: number;

  constructor(cf: ControlFile) {
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
    this.weak = new Int32Array(this.count);
    for (let i = 0; i < this.count; i++) {
      let v = 0;
      const o = i * this.recLen;
      for (let k = 0; k < h.rsumBytes; k++) v = (v << 8) | this.records[o + k]!;
      this.weak[i] = v | 0;
    }
    // At least 2 buckets per block, a power of two.
    this.bits = Math.max(4, Math.ceil(Math.log2(Math.max(1, this.count) * 2)));
    this.head = new Int32Array(1 << this.bits).fill(-1);
    this.next = new Int32Array(this.count);
    this.filterBits = Math.min(30, Math.max(6, Math.ceil(Math.log2(Math.max(1, this.count) * 16))));
    this.filter = new Uint8Array(1 << (this.filterBits - 3));
    this.link();
  }

  /**
   * (Re)build the chains with every block and the filter with the blocks `known` lacks: a
   * scan that starts over from another known set (a worker's next part) needs both whole again.
   */
  link(known?: Uint8Array): void {
    const seq2 = this.seqMatches === 2;
    this.head.fill(-1);
    this.filter.fill(0);
    // Insert in descending order so each chain lists blocks in ascending id order.
    for (let i = this.count - 1; i >= 0; i--) {
      const b = this.bucket(this.weak[i]!);
      this.next[i] = this.head[b]!;
      this.head[b] = i;
      if (known?.[i]) continue;
      const f = this.filterIndex(this.weak[i]!, seq2 && i + 1 < this.count ? this.weak[i + 1]! : 0);
      this.filter[f >>> 3]! |= 1 << (f & 7);
    }
  }

  bucket(stored: number): number {
    return Math.imul(stored, 0x9e3779b1) >>> (32 - this.bits);
  }

  /** Filter position of a (stored weak sum, stored successor weak sum or 0) pair. */
  filterIndex(s0: number, s1: number): number {
    return (Math.imul(s0, 0x9e3779b1) ^ Math.imul(s1 + 0x7f4a7c15, 0x85ebca6b)) >>> (32 - this.filterBits);
  }

  /**
   * Take a found block out of its chain (`prev`: the entry before it, or -1 at the head): a long
   * run of already-found identical blocks must not be walked again at every byte.
   */
  unlink(bucket: number, prev: number, id: number): void {
    if (prev < 0) this.head[bucket] = this.next[id]!;
    else this.next[prev] = this.next[id]!;
  }

  /** Rebuild the filter from the blocks still missing, so found ones stop letting windows through. */
  rebuildFilter(known: Uint8Array): void {
    this.filter.fill(0);
    const seq2 = this.seqMatches === 2;
    for (let i = 0; i < this.count; i++) {
      if (known[i]) continue;
      const f = this.filterIndex(this.weak[i]!, seq2 && i + 1 < this.count ? this.weak[i + 1]! : 0);
      this.filter[f >>> 3]! |= 1 << (f & 7);
    }
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
