// The seed scan: slide a block-sized window over local data, and wherever its weak sum (and, with
// seq_matches 2, the next window's) hits a target block, confirm with MD4 and hand the block over.
// Follows zsync 0.6.2's rules (zsync-format.md §6.3) so it finds every block zsync finds, and a
// little more: the last block is also accepted alone (zsync can reach it only by continuation).
// Pure: works on a buffer the caller fills; matched blocks leave through a callback.
//
// Bounded work (README "Seed scan cost"): found blocks leave the hash chains and, once a lookup
// keeps finding nothing, the filter; a window whose bytes equal an earlier window that matched
// nothing is not hashed again (known blocks only grow, so "nothing" stays true) — uniform runs,
// fill patterns and, for blocks >= 64 KiB, the weak sum's blindness to them (§11) cost one
// strong hash per distinct window instead of one per byte.

import { FILTER_MASKS, filterHash2, type BlockIndex } from './block-index.js';
import { md4Padded, type Md4 } from './md4.js';
import { rollWeakSum, weakSum } from './rsum.js';

export type OnBlock = (id: number, bufPos: number) => void;

/** Work done, for tests and benchmarks (counted, never timed). */
export interface ScanWork {
  strongHashes: number;
  /** Chain entries looked at by lookups. */
  candidates: number;
  lookups: number;
  /** Windows recognised as repeats of one that matched nothing. */
  repeats: number;
  filterRebuilds: number;
}

/**
 * A scan's decisions, for a speculative scan in a worker thread (local/parallel-scan.ts) whose
 * result the main thread replays: per successful continuation or lookup, flat numbers
 * [kind (0 continuation, 1 lookup), x, jump, after, nextAfter, takes, (id, seed offset)·takes].
 */
export class ScanLog {
  private data = new Float64Array(1024);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = v;
  }

  /** Reserve n entries, to be set later; returns where they start. */
  reserve(n: number): number {
    for (let i = 0; i < n; i++) this.push(0);
    return this.length - n;
  }

  set(at: number, v: number): void {
    this.data[at] = v;
  }

  /** The entries, in a buffer of their own (to transfer). */
  toArray(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

const STOP_END = 0;
const STOP_FILTER = 1;
const STOP_LAST = 2;
const STOP_UNIFORM = 3;
// What rollPairs / rollSingles end with (sums, why they stopped): no object per call.
const rolled = new Int32Array(3);

/**
 * Window starts from x on (seq_matches 2): test each window's pair of weak sums against the
 * filter, roll both a byte, until the filter says "maybe" (STOP_FILTER), the window may be the
 * missing last block (STOP_LAST), the byte leaving equals the two entering at or after
 * noSkipUntil (STOP_UNIFORM, nothing rolled), or the window at `stop` said no (STOP_END, nothing
 * rolled). Returns the window start reached; sums and reason in `rolled`. Kept small and
 * apart from scan() so the JIT keeps everything in registers: this loop is the scan's cost on
 * data with nothing to reuse.
 */
function rollPairs(
  buf: Uint8Array, x: number, stop: number, r0: number, r1: number, B: number, outShift: number, mask: number,
  filter: Int32Array, fShift: number, lastWeak: number, lastOpen: boolean, noSkipUntil: number,
): number {
  const masks = FILTER_MASKS;
  const B2 = 2 * B;
  let why = STOP_END;
  for (;;) {
    const s0 = r0 & mask;
    let h = Math.imul(s0 ^ Math.imul(r1 & mask, 0x85ebca6b), 0x9e3779b1); // = filterHash(s0, s1)
    h ^= h >>> 15;
    const m = masks[h & 1023]!;
    if ((filter[h >>> fShift]! & m) === m) { why = STOP_FILTER; break; }
    if (lastOpen && s0 === lastWeak) { why = STOP_LAST; break; }
    if (x >= stop) break;
    const out0 = buf[x]!;
    const mid = buf[x + B]!;
    const in1 = buf[x + B2]!;
    if (out0 === mid && in1 === mid && x >= noSkipUntil) { why = STOP_UNIFORM; break; }
    const a0 = ((r0 >>> 16) + mid - out0) & 0xffff;
    r0 = (a0 << 16) | (((r0 & 0xffff) + a0 - (out0 << outShift)) & 0xffff);
    const a1 = ((r1 >>> 16) + in1 - mid) & 0xffff;
    r1 = (a1 << 16) | (((r1 & 0xffff) + a1 - (mid << outShift)) & 0xffff);
    x++;
  }
  rolled[0] = r0;
  rolled[1] = r1;
  rolled[2] = why;
  return x;
}

/** rollPairs for seq_matches 1: one window, its weak sum alone against the filter. */
function rollSingles(
  buf: Uint8Array, x: number, stop: number, r0: number, B: number, outShift: number, mask: number,
  filter: Int32Array, fShift: number, lastWeak: number, lastOpen: boolean, noSkipUntil: number,
): number {
  const masks = FILTER_MASKS;
  let why = STOP_END;
  for (;;) {
    const s0 = r0 & mask;
    let h = Math.imul(s0, 0x9e3779b1); // = filterHash(s0, 0)
    h ^= h >>> 15;
    const m = masks[h & 1023]!;
    if ((filter[h >>> fShift]! & m) === m) { why = STOP_FILTER; break; }
    if (lastOpen && s0 === lastWeak) { why = STOP_LAST; break; }
    if (x >= stop) break;
    const out0 = buf[x]!;
    const inb = buf[x + B]!;
    if (out0 === inb && x >= noSkipUntil) { why = STOP_UNIFORM; break; }
    const a0 = ((r0 >>> 16) + inb - out0) & 0xffff;
    r0 = (a0 << 16) | (((r0 & 0xffff) + a0 - (out0 << outShift)) & 0xffff);
    x++;
  }
  rolled[0] = r0;
  rolled[1] = 0;
  rolled[2] = why;
  return x;
}

// The filter's second word (the rare path: the first said "maybe").
function mayHold2(filter: Int32Array, second: number, shift: number, s0: number, s1: number): boolean {
  const g = filterHash2(s0, s1);
  const n = FILTER_MASKS[g & 1023]!;
  return (filter[second + (g >>> shift)]! & n) === n;
}

const MISSES = 64; // windows that matched nothing, remembered by position modulo this

/** The first index in [from, end) whose byte is not `v` (or end); four bytes at a time. */
export function firstOther(buf: Uint8Array, from: number, end: number, v: number): number {
  let i = from;
  while (i < end && ((buf.byteOffset + i) & 3) !== 0) {
    if (buf[i] !== v) return i;
    i++;
  }
  const n = (end - i) >>> 2;
  if (n > 0) {
    const words = new Int32Array(buf.buffer, buf.byteOffset + i, n);
    const pattern = Math.imul(v, 0x01010101);
    let k = 0;
    while (k < n && words[k] === pattern) k++;
    i += k * 4;
  }
  while (i < end && buf[i] === v) i++;
  return i;
}

export class SeedMatcher {
  /** 1 for each target block already in place. */
  readonly known: Uint8Array;
  knownCount = 0;
  readonly work: ScanWork = { strongHashes: 0, candidates: 0, lookups: 0, repeats: 0, filterRebuilds: 0 };
  private next = -1; // continuation candidate (seq_matches 2)
  private jump = 0; // bytes the last successful lookup consumed
  // The continuation's digest of the window at contAt (seed offset), for the lookup that follows
  // a failed continuation at the same place.
  private contAt = -1;
  private contDigest: Uint8Array | undefined;
  // Seed offsets of recent windows (seq_matches·B bytes) that matched nothing, slot = offset % MISSES.
  private readonly missAt = new Float64Array(MISSES).fill(-1);
  private readonly missSpan = new Int32Array(MISSES); // bytes each of them covered
  // A period found in the seed: buf[i] === buf[i - period] for seed offsets i in [perFrom, perTo).
  private period = 0;
  private perFrom = 0;
  private perTo = 0;
  // Lookups that found no candidate at all since the filter was last built.
  private stale = 0;
  private knownAtBuild = -1;
  private base = 0;
  /** Set to record decisions (a worker's speculative scan). */
  log: ScanLog | undefined;
  /**
   * Set (a bit per block) to note the blocks whose own offset in the seed the scan rolled over
   * with a different weak sum: the likely-offsets pass (local/seed-scan.ts) need not read them
   * again there (it would compute the same sum). Not for the last block (it may be short).
   */
  ownMiss: Uint8Array | undefined;
  private header = -1; // where the decision being logged starts (its takes follow)

  constructor(
    private readonly index: BlockIndex,
    private readonly md4: Md4,
    known?: Uint8Array,
  ) {
    this.known = known ?? new Uint8Array(index.count);
    for (let i = 0; i < this.known.length; i++) this.knownCount += this.known[i]!;
    // With nothing found yet a rebuild could drop nothing from the filter.
    if (this.knownCount === 0) this.knownAtBuild = 0;
  }

  /** A new seed file starts: no continuation across files, no windows remembered. */
  resetSeed(): void {
    this.next = -1;
    this.contAt = -1;
    this.missAt.fill(-1);
    this.period = 0;
  }

  get blockSize(): number {
    return this.index.blockSize;
  }

  get seqMatches(): number {
    return this.index.seqMatches;
  }

  /** The continuation candidate (-1: none): the state a scan resumes with. */
  get pending(): number {
    return this.next;
  }

  set pending(id: number) {
    this.next = id;
  }

  get complete(): boolean {
    return this.knownCount === this.index.count;
  }

  /**
   * Scan window starts x in [from, limit). `buf` must hold valid bytes (or the zero padding after a
   * seed's end) up to limit - 1 + seqMatches·blockSize; `base` is buf[0]'s offset in the seed.
   * Returns where scanning stopped (>= limit).
   */
  scan(buf: Uint8Array, from: number, limit: number, onBlock: OnBlock, base = 0): number {
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
    const fShift = idx.filterShift;
    const lastWeak = N > 0 ? weak[N - 1]! : 0;
    const own = this.ownMiss;
    // The last block is looked up alone (no successor to pair with) while it is missing.
    let lastOpen = N > 0 && !known[N - 1];
    let x = from;
    let r0 = 0;
    let r1 = 0;
    let fresh = true; // sums must be recomputed (after a jump)
    const ctx = seq2 ? 2 * B : B;
    let noSkipUntil = 0;
    this.base = base;
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
        if (weak[id] === (r0 & mask) && !known[id]) {
          const d = this.strong(buf, x, x + B);
          if (idx.strongMatches(id, d)) {
            this.take(id, x, onBlock);
            this.next = id + 1 < N && !known[id + 1] ? id + 1 : -1;
            if (this.log) this.record(0, base + x, B, id + 1, this.next);
            x += B;
            if (seq2 && x < limit) {
              // The next window is the one r1 already summed: only the one after it is new.
              r0 = r1;
              r1 = weakSum(buf, x + B, x + 2 * B) | 0;
            } else fresh = true;
            continue;
          }
          this.contAt = base + x;
          this.contDigest = d;
        }
      }
      // The hot loop (rollPairs / rollSingles) rolls until the filter says "maybe", the window
      // may be the last block, or the bytes leaving and entering are equal.
      let onlyLast = false; // the filter said no: only the last block (looked up alone) can match
      for (;;) {
        // With ownMiss, also stop at the next window at a block's own offset in the seed.
        let stop = limit - 1;
        if (own) {
          const r = (base + x) % B;
          const aligned = r === 0 ? x : x + B - r;
          if (aligned < stop) stop = aligned;
        }
        x = seq2
          ? rollPairs(buf, x, stop, r0, r1, B, outShift, mask, idx.filter, fShift, lastWeak, lastOpen, noSkipUntil)
          : rollSingles(buf, x, stop, r0, B, outShift, mask, idx.filter, fShift, lastWeak, lastOpen, noSkipUntil);
        r0 = rolled[0]!;
        r1 = rolled[1]!;
        const why = rolled[2]!;
        if (why === STOP_FILTER) {
          if (mayHold2(idx.filter, idx.second, idx.secondShift, r0 & mask, seq2 ? r1 & mask : 0)) break;
          // The second word says no: as if the first had.
          if (lastOpen && (r0 & mask) === lastWeak) { onlyLast = true; break; }
          if (x + 1 >= limit) return x + 1;
        } else if (why === STOP_LAST) {
          onlyLast = true;
          break;
        } else if (why === STOP_END) {
          if (x + 1 >= limit) return x + 1;
          // The window at block id's own offset: its weak sum rules the block out there or not.
          const id = (base + x) / B;
          if (id < N - 1 && (r0 & mask) !== weak[id]) own![id >>> 3]! |= 1 << (id & 7);
        } else {
          // A byte leaving equal to the one entering: through a uniform stretch (zeros, fill)
          // the sums stay as they are and the filter keeps saying no, so jump to its end.
          const end = firstOther(buf, x, limit - 1 + ctx, buf[x]!);
          if (end - ctx > x + 64) {
            x = end - ctx;
            continue;
          }
          noSkipUntil = end; // short: not worth looking again before its end
        }
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
      if (onlyLast ? this.lookupLast(buf, x, onBlock, base) : this.lookup(buf, x, r0, r1, onBlock, base)) {
        x += this.jump;
        fresh = true;
        lastOpen = lastOpen && !known[N - 1];
        continue;
      }
      // Nothing here. Through a uniform stretch every window has these same bytes (and sums),
      // so every lookup would say the same: go to the stretch's last window at once.
      const v = buf[x]!;
      if (x >= noSkipUntil && buf[x + B] === v && (!seq2 || buf[x + 2 * B] === v)) {
        const end = firstOther(buf, x, limit - 1 + ctx, v);
        if (end - ctx > x) x = end - ctx;
        else noSkipUntil = end;
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
  private lookup(buf: Uint8Array, x: number, r0: number, r1: number, onBlock: OnBlock, base: number): boolean {
    const idx = this.index;
    const B = idx.blockSize;
    const N = idx.count;
    const weak = idx.weak;
    const known = this.known;
    const seq2 = idx.seqMatches === 2;
    const s0 = r0 & idx.mask;
    const s1 = seq2 ? r1 & idx.mask : 0;
    const bucket = idx.bucket(s0);
    const work = this.work;
    work.lookups++;
    let d0: Uint8Array | undefined;
    let d1: Uint8Array | undefined;
    let last = -1;
    let tried = false;
    let firstMatched = false; // some candidate's strong hash matched the first window
    let prev = -1;
    for (let id = idx.first(bucket); id >= 0; ) {
      const following = idx.following(id);
      work.candidates++;
      if (known[id]) {
        if (!idx.unlink(bucket, prev, id)) prev = id; // a worker's chain head: stays, skipped
        id = following;
        continue;
      }
      prev = id;
      const pair = seq2 && id + 1 < N;
      if (weak[id] !== s0 || (pair && weak[id + 1] !== s1)) { id = following; continue; }
      if (!tried) {
        tried = true;
        // Same bytes as a window that matched nothing: nothing can match now either.
        if (this.seenBefore(buf, x, base, seq2 ? 2 * B : B)) { work.repeats++; return false; }
        d0 = this.contAt === base + x ? this.contDigest : undefined;
      }
      d0 ??= this.strong(buf, x, x + B);
      if (idx.strongMatches(id, d0)) {
        firstMatched = true;
        let ok = true;
        if (pair) {
          d1 ??= this.strong(buf, x + B, x + 2 * B);
          ok = idx.strongMatches(id + 1, d1);
        }
        if (ok) {
          this.take(id, x, onBlock);
          if (pair && !known[id + 1]) this.take(id + 1, x + B, onBlock);
          last = id;
        }
      }
      id = following;
    }
    this.contAt = -1;
    if (last < 0) {
      // Only the first window's bytes decided, unless a pair failed on its second window.
      if (tried) this.missed(base + x, firstMatched ? 2 * B : B);
      else this.staleHit();
      return false;
    }
    const span = seq2 && last + 1 < N ? 2 : 1;
    const after = last + span;
    this.next = seq2 && after < N && !known[after] ? after : -1;
    this.jump = span * B;
    if (this.log) this.record(1, base + x, span * B, after, this.next);
    return true;
  }

  /**
   * The last block only (the filter ruled out every pair): seq_matches 2 looks it up alone, and
   * only the window at x counts, so near the end of a run, where the next window changes at every
   * byte, the same bytes are still recognised.
   */
  private lookupLast(buf: Uint8Array, x: number, onBlock: OnBlock, base: number): boolean {
    const idx = this.index;
    const B = idx.blockSize;
    const id = idx.count - 1;
    this.work.lookups++;
    this.work.candidates++;
    if (this.known[id]) return false;
    if (this.seenBefore(buf, x, base, B)) { this.work.repeats++; return false; }
    const d0 = (this.contAt === base + x ? this.contDigest : undefined) ?? this.strong(buf, x, x + B);
    this.contAt = -1;
    if (!idx.strongMatches(id, d0)) {
      this.missed(base + x, B);
      return false;
    }
    this.take(id, x, onBlock);
    this.next = -1;
    this.jump = B;
    if (this.log) this.record(1, base + x, B, id + 1, -1);
    return true;
  }

  /**
   * Are the bytes at x the same as those of a remembered window that matched nothing? Each
   * remembered window says how many bytes decided (the first window's, or both when a pair failed
   * on its second); a lookup of the last block alone needs only the first window (`maxSpan`).
   */
  private seenBefore(buf: Uint8Array, x: number, base: number, maxSpan: number): boolean {
    const y = base + x;
    const missAt = this.missAt;
    const missSpan = this.missSpan;
    const P = this.period;
    // In a known periodic stretch: the window one period back matched nothing.
    const back = (y - P) % MISSES;
    if (P > 0 && missAt[back] === y - P) {
      const span = Math.min(missSpan[back]!, maxSpan);
      if (this.periodic(buf, base, y, y + span)) {
        this.missed(y, span);
        return true;
      }
    }
    // Otherwise compare with the remembered windows; a hit gives the period to follow.
    let compares = 0;
    for (let k = 0; k < MISSES; k++) {
      const c = missAt[k]!;
      if (c < base || c >= y) continue; // forgotten, or its bytes are no longer in buf
      const span = Math.min(missSpan[k]!, maxSpan);
      const cx = c - base;
      if (buf[cx] !== buf[x] || buf[cx + span - 1] !== buf[x + span - 1] || buf[cx + (span >>> 1)] !== buf[x + (span >>> 1)]) continue;
      if (compares++ >= 2) break; // bounds the cost when many look alike at their ends
      if (Buffer.compare(buf.subarray(cx, cx + span), buf.subarray(x, x + span)) === 0) {
        this.period = y - c;
        this.perFrom = y;
        this.perTo = y + span;
        this.missed(y, span);
        return true;
      }
    }
    return false;
  }

  // Extends the verified periodic stretch lazily to [y, end): each byte is compared once per period.
  private periodic(buf: Uint8Array, base: number, y: number, end: number): boolean {
    const P = this.period;
    if (this.perTo < y) { this.perFrom = y; this.perTo = y; }
    if (this.perFrom > y) return false;
    for (let i = this.perTo; i < end; i++) {
      if (i - P < base || buf[i - base] !== buf[i - P - base]) {
        this.perFrom = this.perTo = i + 1;
        return false;
      }
    }
    this.perTo = end;
    return true;
  }

  private missed(at: number, span: number): void {
    this.missAt[at % MISSES] = at;
    this.missSpan[at % MISSES] = span;
  }

  // The filter let a window through but no missing block has its weak sums: once that has
  // happened about as often as a rebuild costs, rebuild the filter without the found blocks
  // (amortised: at most doubles the work of those lookups).
  private staleHit(): void {
    if (++this.stale < this.index.count + 1024 || this.knownCount === this.knownAtBuild) return;
    this.index.rebuildFilter(this.known);
    this.work.filterRebuilds++;
    this.knownAtBuild = this.knownCount;
    this.stale = 0;
  }

  /** Record a block found by other means (e.g. at its own offset in the seed). */
  markKnown(id: number): void {
    if (!this.known[id]) {
      this.known[id] = 1;
      this.knownCount++;
    }
  }

  private strong(buf: Uint8Array, start: number, end: number): Uint8Array {
    this.work.strongHashes++;
    return md4Padded(this.md4, buf, start, end, this.index.blockSize);
  }

  private take(id: number, pos: number, onBlock: OnBlock): void {
    this.known[id] = 1;
    this.knownCount++;
    if (this.log) {
      if (this.header < 0) this.header = this.log.reserve(6);
      this.log.push(id);
      this.log.push(this.base + pos);
    }
    onBlock(id, pos);
  }

  private record(kind: number, x: number, jump: number, after: number, nextAfter: number): void {
    const log = this.log!;
    const h = this.header;
    this.header = -1;
    const values = [kind, x, jump, after, nextAfter, (log.length - h - 6) / 2];
    for (let k = 0; k < 6; k++) log.set(h + k, values[k]!);
  }
}
