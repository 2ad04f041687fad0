// The seed scan: slide a block-sized window over local data, and wherever its weak sum (and, with
// seq_matches 2, the next window's) hits a target block, confirm with MD4 and hand the block over.
// Follows zsync 0.6.2's rules (zsync-format.md §6.3) so it finds every block zsync finds, and a
// little more: the last block is also accepted alone (zsync can reach it only by continuation).
// Pure: works on a buffer the caller fills; matched blocks leave through a callback.

import type { BlockIndex } from './block-index.js';
import { md4Padded, type Md4 } from './md4.js';
import { rollWeakSum, weakSum } from './rsum.js';

export type OnBlock = (id: number, bufPos: number) => void;

export class SeedMatcher {
  /** 1 for each target block already in place. */
  readonly known: Uint8Array;
  knownCount = 0;
  private next = -1; // continuation candidate (seq_matches 2)
  private jump = 0; // bytes the last successful lookup consumed

  constructor(
    private readonly index: BlockIndex,
    private readonly md4: Md4,
    known?: Uint8Array,
  ) {
    this.known = known ?? new Uint8Array(index.count);
    for (let i = 0; i < this.known.length; i++) this.knownCount += this.known[i]!;
  }

  /** A new seed file starts: no continuation across files. */
  resetSeed(): void {
    this.next = -1;
  }

  get complete(): boolean {
    return this.knownCount === this.index.count;
  }

  /**
   * Scan window starts x in [from, limit). `buf` must hold valid bytes (or the zero padding after a
   * seed's end) up to limit - 1 + seqMatches·blockSize. Returns where scanning stopped (>= limit).
   */
  scan(buf: Uint8Array, from: number, limit: number, onBlock: OnBlock): number {
    const idx = this.index;
    const B = idx.blockSize;
    const shift = Math.log2(B);
    // For B >= 64 KiB the dropped byte's term vanishes mod 2^16; a shift of 16 (byte << 16) has
    // no bits below 2^16, and stays exact in int32, where shift >= 24 would not.
    const outShift = shift < 16 ? shift : 16;
    const seq2 = idx.seqMatches === 2;
    const N = idx.count;
    const mask = idx.mask;
    const weak = idx.weak;
    const known = this.known;
    const filter = idx.filter;
    const fShift = 32 - idx.filterBits;
    const lastWeak = N > 0 ? weak[N - 1]! : -1;
    let x = from;
    let r0 = 0;
    let r1 = 0;
    let fresh = true; // sums must be recomputed (after a jump)
    while (x < limit) {
      if (fresh) {
        r0 = weakSum(buf, x, x + B) | 0;
        if (seq2) r1 = weakSum(buf, x + B, x + 2 * B) | 0;
        fresh = false;
      }
      // Continuation: the block after the last match, tried first, accepted alone.
      if (this.next >= 0) {
        const id = this.next;
        this.next = -1;
        if (weak[id] === (r0 & mask) && !known[id] && idx.strongMatches(id, md4Padded(this.md4, buf, x, x + B, B))) {
          this.take(id, x, onBlock);
          this.next = id + 1 < N && !known[id + 1] ? id + 1 : -1;
          x += B;
          if (seq2 && x < limit) {
            // The next window is the one r1 already summed: only the one after it is new.
            r0 = r1;
            r1 = weakSum(buf, x + B, x + 2 * B) | 0;
          } else fresh = true;
          continue;
        }
      }
      // The hot loop: roll both windows a byte at a time until the filter says "maybe".
      for (;;) {
        const s0 = r0 & mask;
        const s1 = seq2 ? r1 & mask : 0;
        const f = (Math.imul(s0, 0x9e3779b1) ^ Math.imul(s1 + 0x7f4a7c15, 0x85ebca6b)) >>> fShift;
        if ((filter[f >>> 3]! & (1 << (f & 7))) !== 0 || s0 === lastWeak) break;
        if (x + 1 >= limit) return x + 1;
        const out0 = buf[x]!;
        const mid = buf[x + B]!;
        const a0 = ((r0 >>> 16) + mid - out0) & 0xffff;
        r0 = (a0 << 16) | (((r0 & 0xffff) + a0 - (out0 << outShift)) & 0xffff);
        if (seq2) {
          const a1 = ((r1 >>> 16) + buf[x + 2 * B]! - mid) & 0xffff;
          r1 = (a1 << 16) | (((r1 & 0xffff) + a1 - (mid << outShift)) & 0xffff);
        }
        x++;
      }
      if (this.lookup(buf, x, r0, r1, onBlock)) {
        x += this.jump;
        fresh = true;
        continue;
      }
      if (x + 1 >= limit) { x++; break; }
      r0 = rollWeakSum(r0, buf[x]!, buf[x + B]!, shift) | 0;
      if (seq2) r1 = rollWeakSum(r1, buf[x + B]!, buf[x + 2 * B]!, shift) | 0;
      x++;
    }
    return x;
  }

  // Candidates for the window at x; on a match, writes the blocks, sets the continuation and
  // returns true after moving `this.jump` past them.
  private lookup(buf: Uint8Array, x: number, r0: number, r1: number, onBlock: OnBlock): boolean {
    const idx = this.index;
    const B = idx.blockSize;
    const N = idx.count;
    const weak = idx.weak;
    const known = this.known;
    const seq2 = idx.seqMatches === 2;
    const s0 = r0 & idx.mask;
    const s1 = seq2 ? r1 & idx.mask : 0;
    let d0: Uint8Array | undefined;
    let d1: Uint8Array | undefined;
    let last = -1;
    for (let id = idx.first(idx.bucket(s0)); id >= 0; id = idx.following(id)) {
      if (weak[id] !== s0 || known[id]) continue;
      const pair = seq2 && id + 1 < N;
      if (pair && weak[id + 1] !== s1) continue;
      d0 ??= md4Padded(this.md4, buf, x, x + B, B);
      if (!idx.strongMatches(id, d0)) continue;
      if (pair) {
        d1 ??= md4Padded(this.md4, buf, x + B, x + 2 * B, B);
        if (!idx.strongMatches(id + 1, d1)) continue;
      }
      this.take(id, x, onBlock);
      if (pair && !known[id + 1]) this.take(id + 1, x + B, onBlock);
      last = id;
    }
    if (last < 0) return false;
    const span = seq2 && last + 1 < N ? 2 : 1;
    const after = last + span;
    this.next = seq2 && after < N && !known[after] ? after : -1;
    this.jump = span * B;
    return true;
  }

  /** Record a block found by other means (e.g. at its own offset in the seed). */
  markKnown(id: number): void {
    if (!this.known[id]) {
      this.known[id] = 1;
      this.knownCount++;
    }
  }

  private take(id: number, pos: number, onBlock: OnBlock): void {
    this.known[id] = 1;
    this.knownCount++;
    onBlock(id, pos);
  }
}
