// A two-level sync's search for the needed fine blocks in one local copy, cheapest first:
// 1. each needed fine block where its coarse run's neighbours say it is (their shifts, and in
//    place): one weak sum per block, read in large pieces — in-place rewrites and a shift found at
//    the coarse level cost no sliding at all;
// 2. a sliding scan around each run of fine blocks still missing, moved by the shifts of the fine
//    blocks found on either side (data moved inside a coarse block by an insertion or deletion);
// 3. instead of 2, a sliding scan of the whole copy when the bytes still missing are at least 1/8
//    of it (reading it again costs less than fetching that much; content moved far away is found).

import { open, type FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import { scanRegions, missingBytes } from '../engine/fine-plan.js';
import type { SeedMatcher } from '../engine/matcher.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import { fromSystemError } from '../errors.js';
import { tryTasks, type BlockTarget } from './likely-places.js';
import type { PlaceTask } from './parallel-places.js';
import { scanRange, scanSeedFile, type ScanBuffers } from './seed-scan.js';

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
  /** Worker threads for pass 1's hashing (local/parallel-places.ts), with the fine level registered. */
  places?: BlockTarget['places'];
}

/** Local copy bytes per missing byte above which a whole pass over the copy is not worth it. */
export const WHOLE_PASS_RATIO = 8;
const SLIDE_PIECE = 1 << 20;

export async function scanFine(seed: string, s: FineScan): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(seed, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the seed', seed);
  }
  let wholePass = false;
  try {
    const size = (await fh.stat()).size;
    const fineShift = new Float64Array(s.index.count).fill(NaN);
    const per = s.coarseBlockSize / s.index.blockSize;
    for (let id = 0; id < fineShift.length; id++) if (!s.needed[id]) fineShift[id] = s.coarseShift[Math.floor(id / per)]!;
    await tryLikelyPlaces(fh, seed, size, s, fineShift);
    // Much still missing: the whole-copy slide below covers everything the local slides would.
    wholePass = !s.matcher.complete && missingBytes(s.matcher.known, s.index.blockSize, s.index.length) * WHOLE_PASS_RATIO >= size;
    const buffers: ScanBuffers = {};
    for (const region of wholePass ? [] : scanRegions(s.matcher.known, fineShift, s.index.blockSize, s.index.length, size, true)) {
      if (s.matcher.complete) break;
      s.matcher.resetSeed();
      await scanRange(fh, seed, size, s.matcher, region.start, region.end, (id, buf, pos, at) => {
        fineShift[id] = at - id * s.index.blockSize;
        s.write(id, buf, pos);
      }, undefined, SLIDE_PIECE, buffers);
    }
  } finally {
    await fh.close();
  }
  if (wholePass) await scanSeedFile(seed, { index: s.index, matcher: s.matcher, md4: s.hasher, shift: new Float64Array(s.index.count), sink: s.write });
}

/** Pass 1: each missing coarse run's fine blocks at the shifts of its coarse neighbours, then in place. */
async function tryLikelyPlaces(fh: FileHandle, seed: string, size: number, s: FineScan, fineShift: Float64Array): Promise<void> {
  const Bc = s.coarseBlockSize;
  const Bf = s.index.blockSize;
  const n = s.coarseKnown.length;
  const target: BlockTarget = { index: s.index, matcher: s.matcher, hasher: s.hasher, write: s.write, shift: fineShift, ...(s.places ? { places: s.places } : {}) };
  // One list for every run, so that reading and hashing overlap across runs; a block found at one
  // shift is not taken again at the next (it is known by then).
  const tasks: PlaceTask[] = [];
  let before = NaN;
  for (let c = 0; c < n; ) {
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
    for (const shift of new Set([before, after, 0].filter((x) => !Number.isNaN(x)))) tasks.push({ first, last, shift });
    c = end;
  }
  await tryTasks(fh, seed, size, target, tasks);
}
