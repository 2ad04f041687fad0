// A two-level sync's search for the needed fine blocks in one local copy, cheapest first:
// 1. each needed fine block where its coarse run's neighbours say it is (their shifts, and in
//    place): one weak sum per block, read in large pieces — in-place rewrites and a shift found at
//    the coarse level cost no sliding at all;
// 2. a sliding scan around each run of fine blocks still missing, moved by the shifts of the fine
//    blocks found on either side (data moved inside a coarse block by an insertion or deletion);
// 3. a sliding scan of the whole copy when the bytes still missing are at least 1/8 of it (reading
//    it again costs less than fetching that much; content moved far away is found there).

import { open, type FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import { scanRegions, missingBytes } from '../engine/fine-plan.js';
import type { SeedMatcher } from '../engine/matcher.js';
import { md4Padded } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import { fromSystemError } from '../errors.js';
import { scanRange, scanSeedFile } from './seed-scan.js';

export interface FineScan {
  /** The fine blocks: `matcher.known` has 1 for every block not needed or already found. */
  index: BlockIndex;
  matcher: SeedMatcher;
  hasher: StrongHasher;
  /** 1 for the fine blocks the plan asked for (inside missing coarse blocks). */
  needed: Uint8Array;
  coarseBlockSize: number;
  coarseKnown: Uint8Array;
  /** This seed's coarse shifts (seed offset − target offset, NaN where not found in it). */
  coarseShift: Float64Array;
  write: (id: number, buf: Uint8Array, pos: number) => void;
}

/** Local copy bytes per missing byte above which a whole pass over the copy is not worth it. */
export const WHOLE_PASS_RATIO = 8;
const PIECE = 4 << 20;

export async function scanFine(seed: string, s: FineScan): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(seed, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the seed', seed);
  }
  let size: number;
  try {
    size = (await fh.stat()).size;
    const fineShift = new Float64Array(s.index.count).fill(NaN);
    const per = s.coarseBlockSize / s.index.blockSize;
    for (let id = 0; id < fineShift.length; id++) if (!s.needed[id]) fineShift[id] = s.coarseShift[Math.floor(id / per)]!;
    await tryLikelyPlaces(fh, seed, size, s, fineShift);
    for (const region of scanRegions(s.matcher.known, fineShift, s.index.blockSize, s.index.length, size)) {
      if (s.matcher.complete) break;
      s.matcher.resetSeed();
      await scanRange(fh, seed, size, s.matcher, region.start, region.end, (id, buf, pos, at) => {
        fineShift[id] = at - id * s.index.blockSize;
        s.write(id, buf, pos);
      });
    }
  } finally {
    await fh.close();
  }
  if (!s.matcher.complete && missingBytes(s.matcher.known, s.index.blockSize, s.index.length) * WHOLE_PASS_RATIO >= size) {
    await scanSeedFile(seed, { index: s.index, matcher: s.matcher, md4: s.hasher, shift: new Float64Array(s.index.count), sink: s.write });
  }
}

/** Pass 1: each missing coarse run's fine blocks at the shifts of its coarse neighbours, then in place. */
async function tryLikelyPlaces(fh: FileHandle, seed: string, size: number, s: FineScan, fineShift: Float64Array): Promise<void> {
  const Bc = s.coarseBlockSize;
  const Bf = s.index.blockSize;
  const n = s.coarseKnown.length;
  const buf = new Uint8Array(PIECE + Bf);
  let before = NaN;
  for (let c = 0; c < n && !s.matcher.complete; ) {
    if (s.coarseKnown[c]) {
      if (!Number.isNaN(s.coarseShift[c]!)) before = s.coarseShift[c]!;
      c++;
      continue;
    }
    let end = c;
    while (end < n && !s.coarseKnown[end]) end++;
    let after = NaN;
    for (let k = end; k < n; k++) if (!Number.isNaN(s.coarseShift[k]!)) { after = s.coarseShift[k]!; break; }
    const first = c * (Bc / Bf);
    const last = Math.min(s.index.count, end * (Bc / Bf));
    for (const shift of new Set([before, after, 0].filter((x) => !Number.isNaN(x)))) {
      await tryAt(fh, seed, size, s, first, last, shift, buf, fineShift);
    }
    c = end;
  }
}

// Fine blocks [first, last) at their offset + shift, read a piece at a time.
async function tryAt(fh: FileHandle, seed: string, size: number, s: FineScan, first: number, last: number, shift: number, buf: Uint8Array, fineShift: Float64Array): Promise<void> {
  const Bf = s.index.blockSize;
  const perPiece = Math.floor(PIECE / Bf);
  for (let id = first; id < last; id += perPiece) {
    const stop = Math.min(last, id + perPiece);
    let missing = false;
    for (let k = id; k < stop && !missing; k++) missing = !s.matcher.known[k];
    if (!missing) continue;
    const from = id * Bf + shift;
    if (from < 0 || from >= size) continue;
    let got: number;
    try {
      ({ bytesRead: got } = await fh.read(buf, 0, Math.min((stop - id) * Bf, size - from), from));
    } catch (error) {
      throw fromSystemError(error, 'cannot read the seed', seed);
    }
    for (let k = id; k < stop; k++) {
      if (s.matcher.known[k]) continue;
      const pos = (k - id) * Bf;
      const len = Math.min(Bf, s.index.length - k * Bf);
      if (got - pos < len) break;
      if ((weakSumPadded(buf, pos, pos + len, Bf) & s.index.mask) !== s.index.weak[k]) continue;
      if (!s.index.strongMatches(k, md4Padded(s.hasher, buf, pos, pos + len, Bf))) continue;
      s.matcher.markKnown(k);
      fineShift[k] = shift;
      s.write(k, buf, pos);
    }
  }
}
