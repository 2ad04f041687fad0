// Blocks looked for where they most likely are instead of by sliding: target blocks [first, last)
// at their own offset plus a shift, read in large pieces, one weak sum per block and a strong hash
// only where it agrees. In-place rewrites, and data moved by a shift already seen, cost a
// sequential read and no sliding.

import type { FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import type { SeedMatcher } from '../engine/matcher.js';
import { md4Padded } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import { fromSystemError } from '../errors.js';

export interface BlockTarget {
  index: BlockIndex;
  matcher: SeedMatcher;
  hasher: StrongHasher;
  write: (id: number, buf: Uint8Array, pos: number) => void;
  /** Seed offset minus target offset of each block found in this seed (NaN: not found here). */
  shift: Float64Array;
}

const PIECE = 4 << 20;

/** A buffer for tryBlocksAt, reused from call to call. */
export function placesBuffer(blockSize: number): Uint8Array {
  return new Uint8Array(Math.max(blockSize, Math.floor(PIECE / blockSize) * blockSize));
}

export async function tryBlocksAt(fh: FileHandle, seed: string, size: number, t: BlockTarget, first: number, last: number, shift: number, buf: Uint8Array): Promise<void> {
  const B = t.index.blockSize;
  const perPiece = buf.length / B;
  for (let id = first; id < last && !t.matcher.complete; id += perPiece) {
    const stop = Math.min(last, id + perPiece);
    let missing = false;
    for (let k = id; k < stop && !missing; k++) missing = !t.matcher.known[k];
    if (!missing) continue;
    const from = id * B + shift;
    if (from < 0 || from >= size) continue;
    let got: number;
    try {
      ({ bytesRead: got } = await fh.read(buf, 0, Math.min((stop - id) * B, size - from), from));
    } catch (error) {
      throw fromSystemError(error, 'cannot read the seed', seed);
    }
    for (let k = id; k < stop; k++) {
      if (t.matcher.known[k]) continue;
      const pos = (k - id) * B;
      const len = Math.min(B, t.index.length - k * B);
      if (got - pos < len) break;
      // The last block is compared with its zero padding, as its record was made.
      if ((weakSumPadded(buf, pos, pos + len, B) & t.index.mask) !== t.index.weak[k]) continue;
      if (!t.index.strongMatches(k, md4Padded(t.hasher, buf, pos, pos + len, B))) continue;
      t.matcher.markKnown(k);
      t.shift[k] = shift;
      t.write(k, buf, pos);
    }
  }
}
