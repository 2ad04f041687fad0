// A two-level sync's plan (README "Two-level sync"): which fine blocks lie inside the coarse blocks
// still missing, which byte ranges of the fine .zsync hold their records, and where in a local
// copy those fine blocks are worth looking for. Pure: arrays in, ranges out.

import type { ByteRange } from '../transport/types.js';

/** 1 for each fine block inside a coarse block that `coarseKnown` lacks. */
export function neededFineBlocks(coarseKnown: Uint8Array, coarseBlockSize: number, fineBlockSize: number, length: number): Uint8Array {
  const fineCount = Math.ceil(length / fineBlockSize);
  const per = coarseBlockSize / fineBlockSize;
  const needed = new Uint8Array(fineCount);
  for (let c = 0; c < coarseKnown.length; c++) if (!coarseKnown[c]) needed.fill(1, c * per, Math.min(fineCount, (c + 1) * per));
  return needed;
}

/**
 * Byte ranges of the fine .zsync holding the needed records, plus the record after each run: with
 * seq_matches 2 a block is looked up together with its successor's weak sum, so the last needed
 * block of a run needs the next record too. Ranges closer than `mergeGap` bytes become one (a
 * multipart part costs ~100 bytes of headers; a few records in between cost less).
 */
export function recordRanges(needed: Uint8Array, headerLength: number, recordLength: number, mergeGap = 128): ByteRange[] {
  const ranges: ByteRange[] = [];
  const n = needed.length;
  for (let i = 0; i < n; ) {
    if (!needed[i]) { i++; continue; }
    let j = i;
    while (j < n && needed[j]) j++;
    const start = headerLength + i * recordLength;
    const end = headerLength + Math.min(n, j + 1) * recordLength;
    const prev = ranges[ranges.length - 1];
    if (prev && start - prev.end <= mergeGap) prev.end = Math.max(prev.end, end);
    else ranges.push({ start, end });
    i = j;
  }
  return ranges;
}

/**
 * Where in a seed of `seedSize` bytes the content of each missing coarse run most likely is: its own
 * place moved by the shifts of the nearest coarse blocks found before and after it in this seed
 * (`shift[id]`: seed offset minus target offset, NaN where not found; none found: in place), widened
 * by one coarse block on each side. Overlapping regions are merged; sorted by start.
 * `checkedAtNeighbours`: every missing block was already looked for at the shifts of the blocks
 * found next to its run. Then a run of one or two blocks whose two neighbours were found at one
 * shift needs no region: for a block of it to have moved, the data must change both before and
 * after that block and inside the run, which takes at least three blocks (a rewrite in place, the
 * common case, costs no slide).
 */
export function scanRegions(coarseKnown: Uint8Array, shift: Float64Array, coarseBlockSize: number, length: number, seedSize: number, checkedAtNeighbours = false): ByteRange[] {
  const B = coarseBlockSize;
  const n = coarseKnown.length;
  const after = new Float64Array(n + 1).fill(NaN);
  for (let id = n - 1; id >= 0; id--) after[id] = Number.isNaN(shift[id]!) ? after[id + 1]! : shift[id]!;
  const regions: ByteRange[] = [];
  let before = NaN;
  for (let id = 0; id < n; ) {
    if (coarseKnown[id]) {
      if (!Number.isNaN(shift[id]!)) before = shift[id]!;
      id++;
      continue;
    }
    let end = id;
    while (end < n && !coarseKnown[end]) end++;
    if (checkedAtNeighbours && end - id <= 2 && id > 0 && end < n && shift[id - 1] === shift[end]) {
      id = end;
      continue;
    }
    const shifts = [before, after[end]!].filter((s) => !Number.isNaN(s));
    if (shifts.length === 0) shifts.push(0);
    const from = Math.max(0, id * B + Math.min(...shifts) - B);
    const to = Math.min(seedSize, Math.min(end * B, length) + Math.max(...shifts) + B);
    if (from < to) {
      const prev = regions[regions.length - 1];
      if (prev && from <= prev.end) prev.end = Math.max(prev.end, to);
      else regions.push({ start: from, end: to });
    }
    id = end;
  }
  regions.sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const r of regions) {
    const prev = merged[merged.length - 1];
    if (prev && r.start <= prev.end) prev.end = Math.max(prev.end, r.end);
    else merged.push({ ...r });
  }
  return merged;
}

/** Bytes of the target in blocks `known` lacks. */
export function missingBytes(known: Uint8Array, blockSize: number, length: number): number {
  let total = 0;
  for (let id = 0; id < known.length; id++) if (!known[id]) total += Math.min(blockSize, length - id * blockSize);
  return total;
}
