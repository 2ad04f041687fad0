// The coarse level of a two-level sync in one local copy. Sliding a block-sized window costs a
// weak-sum roll per byte wherever nothing matches, and with large coarse blocks a few scattered
// edits leave most blocks unmatched: sliding over them would cost more than everything else. So:
// 1. every coarse block at its own offset (a sequential read, one weak sum per block);
// 2. a slide only over the runs still missing that their found neighbours do not vouch for
//    (neighbours moved by different amounts, found on one side only, or none found in this copy):
//    that is where data moved and a shift is to be learned; it goes on while it finds blocks and
//    stops after a few coarse blocks that yield none. A shift learned is followed at once: the
//    rest of the run is checked where that shift puts it (an insertion moves all that follows),
//    a weak sum per block, and the slide resumes past what that found. A run between neighbours
//    found in place (or both moved alike) changed where it is: the fine level looks there, a fine
//    block at a time.
// The checks at likely places run on a worker thread when there is one (local/parallel-places.ts).

import { open, type FileHandle } from 'node:fs/promises';
import { fromSystemError } from '../errors.js';
import { tryTasks, type BlockTarget } from './likely-places.js';
import { scanRange, type ScanBuffers } from './seed-scan.js';

const SLIDE_PIECE = 1 << 20;
/** Pieces of two coarse blocks slid in a row without a find before a run is left to the fine level. */
const EMPTY_PIECES = 4;

export async function scanCoarse(seed: string, t: BlockTarget, onProgress?: (done: number, total: number) => void): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(seed, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the seed', seed);
  }
  try {
    const size = (await fh.stat()).size;
    t.shift.fill(NaN);
    t.matcher.resetSeed();
    const B = t.index.blockSize;
    const n = t.index.count;
    const slide = new Slide(fh, seed, size, t);
    // The first block found from the start of the copy says where the data sits: in place (then
    // following its shift is the in-place pass), or shifted by an insertion near the start (then an
    // in-place pass would check every block for nothing).
    const first = await slide.run(0, n, 0, size, new Set(), true);
    if (first !== 0) await tryTasks(fh, seed, size, t, [{ first: 0, last: n, shift: 0 }]);
    onProgress?.(size, size);
    const tried = new Set([0, ...(Number.isNaN(first) ? [] : [first])]);
    for (let a = 0; a < n && !t.matcher.complete; ) {
      if (t.matcher.known[a]) { a++; continue; }
      let b = a;
      while (b < n && !t.matcher.known[b]) b++;
      const before = nearest(t.shift, a - 1, -1);
      const after = nearest(t.shift, b, 1);
      const shifts = [before, after].filter((s) => !Number.isNaN(s));
      const vouched = shifts.length === 2 && before === after;
      if (!vouched) {
        // No neighbour found here at all: the run's content may be anywhere in this copy.
        const from = shifts.length === 0 ? 0 : Math.max(0, a * B + Math.min(...shifts) - B);
        const to = shifts.length === 0 ? size : Math.min(size, Math.min(b * B, t.index.length) + Math.max(...shifts) + B);
        await slide.run(a, b, from, to, new Set(tried), false);
      } else if (!tried.has(shifts[0]!)) {
        await tryTasks(fh, seed, size, t, [{ first: a, last: b, shift: shifts[0]! }]);
      }
      a = b;
    }
  } finally {
    await fh.close();
  }
}

/** Slides over parts of one copy looking for the blocks of a run, following each shift it learns. */
class Slide {
  private readonly buffers: ScanBuffers = {};

  constructor(private readonly fh: FileHandle, private readonly seed: string, private readonly size: number, private readonly t: BlockTarget) {}

  /**
   * Slide over seed bytes [from, to) for the missing blocks [a, b); `followed`: shifts at which the
   * run was already checked. Each shift learned is followed over the rest of the run, and the slide
   * skips what is known at a followed shift. `once`: stop after the first shift followed.
   * Returns the first shift learned (NaN: none).
   */
  async run(a: number, b: number, from: number, to: number, followed: Set<number>, once: boolean): Promise<number> {
    const { fh, seed, size, t } = this;
    const B = t.index.blockSize;
    let learned = NaN;
    t.matcher.resetSeed();
    // A piece at a time, given up after EMPTY_PIECES pieces that found nothing: content that
    // changed where it is (no block to find) costs a few blocks of sliding, not the whole run.
    // Pieces double while they find blocks.
    for (let at = from, empty = 0, piece = 2 * B; at < to && empty < EMPTY_PIECES && !t.matcher.complete; ) {
      const found = t.matcher.knownCount;
      const end = Math.min(to, at + piece);
      let last = -1; // the run's last block found in this piece
      const stopped = await scanRange(fh, seed, size, t.matcher, at, end, (id, buf, pos, x) => {
        t.shift[id] = x - id * B;
        t.write(id, buf, pos);
        if (id >= a && id < b && id > last) last = id;
      }, undefined, SLIDE_PIECE, this.buffers);
      at = Math.max(stopped, end);
      if (last >= 0) {
        const s = t.shift[last]!;
        if (Number.isNaN(learned)) learned = s;
        if (!followed.has(s)) {
          // Data that moved goes on moving by the same amount (an insertion shifts all that
          // follows): the rest of the run is looked for at that shift, a weak sum per block.
          followed.add(s);
          await tryTasks(fh, seed, size, t, [{ first: last + 1, last: b, shift: s }]);
          if (once) break;
        }
      }
      // Where the slide stands, the blocks known at a followed shift are skipped (their bytes
      // hold no other block), so rolling goes only over what is still unexplained.
      for (let moved = true; moved && at < to; ) {
        moved = false;
        for (const s of followed) {
          let id = Math.floor((at - s) / B);
          if (id < 0 || id >= t.index.count || !t.matcher.known[id] || t.shift[id] !== s) continue;
          while (id < t.index.count && t.matcher.known[id] && t.shift[id] === s) id++;
          at = id * B + s;
          moved = true;
        }
      }
      if (t.matcher.knownCount > found) {
        empty = 0;
        piece *= 2;
      } else {
        empty++;
        piece = 2 * B;
      }
    }
    return learned;
  }
}

/** The shift of the nearest block found in this copy from `from` going `step` (NaN: none). */
function nearest(shift: Float64Array, from: number, step: 1 | -1): number {
  for (let id = from; id >= 0 && id < shift.length; id += step) if (!Number.isNaN(shift[id]!)) return shift[id]!;
  return NaN;
}
