// The two-level plan: fine blocks inside missing coarse blocks, the record ranges that hold them
// (with each run's successor, merged across small gaps), and where to look in a seed.

import { describe, expect, it } from 'vitest';
import { missingBytes, neededFineBlocks, recordRanges, scanRegions } from '../../src/engine/fine-plan.js';

describe('fine plan', () => {
  it('needs the fine blocks of each missing coarse block, the last partial one cut at the file end', () => {
    // 3 coarse blocks of 8 KiB, 2 KiB fine blocks, a 20 000-byte file: 10 fine blocks.
    const needed = neededFineBlocks(Uint8Array.from([1, 0, 0]), 8192, 2048, 20_000);
    expect(Array.from(needed)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(neededFineBlocks(Uint8Array.from([0, 1, 1]), 8192, 2048, 20_000))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('asks for each run of records and its successor, merging runs closer than the gap', () => {
    const needed = Uint8Array.from([0, 1, 1, 0, 0, 0, 0, 0, 0, 1]);
    // header 100 bytes, 8-byte records
    expect(recordRanges(needed, 100, 8, 0)).toEqual([{ start: 108, end: 132 }, { start: 172, end: 180 }]);
    expect(recordRanges(needed, 100, 8, 64)).toEqual([{ start: 108, end: 180 }]);
    // A run that ends one record before the next starts: the successor is the next run's first record.
    expect(recordRanges(Uint8Array.from([1, 0, 1]), 0, 8, 0)).toEqual([{ start: 0, end: 24 }]);
    expect(recordRanges(new Uint8Array(4), 0, 8)).toEqual([]);
  });

  it('looks around missing coarse runs, moved by their found neighbours, one coarse block wider each side', () => {
    const B = 1000;
    const known = Uint8Array.from([1, 1, 0, 1, 1, 0, 0, 1]);
    const shift = Float64Array.from([16, 16, NaN, 16, 16, NaN, NaN, 16]);
    // [2,3) → 2016 ± 1000; [5,7) → 5016..7016 ± 1000: they touch at 4016 and merge, clamped to the seed.
    expect(scanRegions(known, shift, B, 8000, 8016)).toEqual([{ start: 1016, end: 8016 }]);
    // A run between neighbours that moved differently is looked for under both shifts.
    expect(scanRegions(Uint8Array.from([1, 0, 1, 1, 1, 1]), Float64Array.from([-300, NaN, 200, 200, 200, 200]), B, 6000, 6000)).toEqual([{ start: 0, end: 3200 }]);
  });

  it('merges regions that touch and falls back to in place when no neighbour was found in this seed', () => {
    const regions = scanRegions(Uint8Array.from([0, 1, 0, 1]), Float64Array.from([NaN, NaN, NaN, NaN]), 1000, 4000, 4000);
    expect(regions).toEqual([{ start: 0, end: 4000 }]);
    const apart = scanRegions(Uint8Array.from([0, 1, 1, 1, 1, 1, 0]), Float64Array.from([NaN, -5, -5, -5, -5, -5, NaN]), 1000, 7000, 7000);
    expect(apart).toEqual([{ start: 0, end: 1995 }, { start: 4995, end: 7000 }]);
  });

  it('skips runs of one or two blocks between neighbours found at one shift once those were checked there', () => {
    const B = 1000;
    //                          0  1  2  3  4  5  6  7  8  9 10 11 12
    const known = Uint8Array.from([1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1]);
    const shift = Float64Array.from([0, NaN, 0, NaN, NaN, 0, NaN, NaN, NaN, 0, NaN, NaN, 7]);
    // [1,2) and [3,5): rewrites in place, nothing to slide for; [6,9) may hold a moved block; [10,12) sits between shifts 0 and 7.
    // [6,9) → 5000..10 000, [10,12) → 9000..13 007 (clamped): merged.
    expect(scanRegions(known, shift, B, 13_000, 13_000, true)).toEqual([{ start: 5000, end: 13_000 }]);
    // Without the check the short runs get their regions too.
    expect(scanRegions(known, shift, B, 13_000, 13_000)).toEqual([{ start: 0, end: 13_000 }]);
    // A run at the file's start has one neighbour only: it is slid for.
    expect(scanRegions(Uint8Array.from([0, 1, 1]), Float64Array.from([NaN, 0, 0]), B, 3000, 3000, true)).toEqual([{ start: 0, end: 2000 }]);
  });

  it('counts the missing bytes with a short last block', () => {
    expect(missingBytes(Uint8Array.from([1, 0, 0]), 1000, 2500)).toBe(1500);
  });
});
