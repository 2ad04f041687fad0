// The coarse level of a two-level sync in one local copy. Sliding a block-sized window costs a
// weak-sum roll per byte wherever nothing matches, and with large coarse blocks a few scattered
// edits leave most blocks unmatched: sliding over them would cost more than everything else. So:
// 1. every coarse block at its own offset (a sequential read, one weak sum per block);
// 2. a slide only over the runs still missing that their found neighbours do not vouch for
//    (neighbours moved by different amounts, found on one side only, or none found in this copy):
//    that is where data moved and a shift is to be learned; it goes on while it finds blocks and
//    stops after a few coarse blocks that yield none. A run between neighbours found in place (or
//    both moved alike) changed where it is: the fine level looks there, a fine block at a time.

import { open, type FileHandle } from 'node:fs/promises';
import { fromSystemError } from '../errors.js';
import { placesBuffer, tryBlocksAt, type BlockTarget } from './likely-places.js';
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
    await tryBlocksAt(fh, seed, size, t, 0, n, 0, placesBuffer(B));
    onProgress?.(size, size);
    const buffers: ScanBuffers = {};
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
        t.matcher.resetSeed();
        // A piece at a time, given up after EMPTY_PIECES pieces that found nothing: content that
        // changed where it is (no block to find) costs a few blocks of sliding, not the whole run.
        // Pieces double while they find blocks (a long shifted stretch costs a few calls, not one per two blocks).
        for (let at = from, empty = 0, piece = 2 * B; at < to && empty < EMPTY_PIECES && !t.matcher.complete; ) {
          const found = t.matcher.knownCount;
          const end = Math.min(to, at + piece);
          const stopped = await scanRange(fh, seed, size, t.matcher, at, end, (id, buf, pos, x) => {
            t.shift[id] = x - id * B;
            t.write(id, buf, pos);
          }, undefined, SLIDE_PIECE, buffers);
          at = Math.max(stopped, end);
          if (t.matcher.knownCount > found) {
            empty = 0;
            piece *= 2;
          } else {
            empty++;
            piece = 2 * B;
          }
        }
      } else if (shifts[0] !== 0) {
        await tryBlocksAt(fh, seed, size, t, a, b, shifts[0]!, placesBuffer(B));
      }
      a = b;
    }
  } finally {
    await fh.close();
  }
}

/** The shift of the nearest block found in this copy from `from` going `step` (NaN: none). */
function nearest(shift: Float64Array, from: number, step: 1 | -1): number {
  for (let id = from; id >= 0 && id < shift.length; id += step) if (!Number.isNaN(shift[id]!)) return shift[id]!;
  return NaN;
}
