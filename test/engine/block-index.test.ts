// The block index's filter and its shared (worker) view. Work is counted (lookups, candidates),
// never timed: the filter's false-hit rate is what made unrelated data slow.

import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4 } from '../../src/engine/md4.js';
import { seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

const KiB = 1024;

function padded(seed: Uint8Array, ctx: number): Uint8Array {
  const buf = new Uint8Array(seed.length + ctx);
  buf.set(seed);
  return buf;
}

describe('block index', () => {
  it('its filter lets through every missing block, before and after a rebuild', async () => {
    const index = new BlockIndex(await controlOf(seededBytes(3 * 1024 * KiB + 123, 5), 2 * KiB));
    const { weak, count } = index;
    const pair = (i: number): [number, number] => [weak[i]!, i + 1 < count ? weak[i + 1]! : 0];
    for (let i = 0; i < count; i++) expect(index.mayHold(...pair(i))).toBe(true);
    const known = new Uint8Array(count);
    for (let i = 0; i < count; i += 2) known[i] = 1;
    index.rebuildFilter(known);
    for (let i = 1; i < count; i += 2) expect(index.mayHold(...pair(i))).toBe(true);
    // The found half mostly stops getting through (a few share words and bits with missing ones).
    let through = 0;
    for (let i = 0; i < count; i += 2) if (index.mayHold(...pair(i))) through++;
    expect(through).toBeLessThan(count / 2 / 8);
  });

  it('sends unrelated data to a lookup less than once in 200 bytes (2 KiB blocks)', async () => {
    const B = 2 * KiB;
    const index = new BlockIndex(await controlOf(seededBytes(8 * 1024 * KiB, 11), B));
    const matcher = new SeedMatcher(index, await createMd4());
    const seed = seededBytes(8 * 1024 * KiB, 12);
    matcher.scan(padded(seed, 2 * B), 0, seed.length, () => undefined);
    expect(matcher.knownCount).toBe(0);
    // One bit per block (the filter before) let about one window in 16 through.
    expect(matcher.work.lookups).toBeLessThan(seed.length / 200);
  });

  it('a worker view (shared buffers) finds what the owner finds, and its unlinking stays its own', async () => {
    const B = 2 * KiB;
    const target = seededBytes(512 * KiB, 21);
    const cf = await controlOf(target, B);
    const owner = new BlockIndex(cf);
    const records = new SharedArrayBuffer(cf.records.length);
    new Uint8Array(records).set(cf.records);
    const shared = owner.share(records, cf.hashLengths);
    // The seed holds the target twice: the second copy finds nothing new, only found blocks.
    const seed = padded(new Uint8Array([...target, ...target]), 2 * B);
    const scanWith = async (index: BlockIndex): Promise<SeedMatcher> => {
      const m = new SeedMatcher(index, await createMd4());
      m.scan(seed, 0, seed.length - 2 * B, () => undefined);
      return m;
    };
    const worker = new BlockIndex({ ...cf, records: new Uint8Array(records) }, shared);
    expect(worker.ownsHeads).toBe(false);
    const w = await scanWith(worker);
    expect(w.knownCount).toBe(owner.count);
    // A part restarts from the shared chains: all blocks are found again.
    worker.restart();
    expect((await scanWith(worker)).knownCount).toBe(owner.count);
    // The owner's chains still hold every block (the worker unlinked in its own copy only).
    expect((await scanWith(owner)).knownCount).toBe(owner.count);
  });
  it('a worker view takes links of its own once found blocks keep coming back (bounded candidates)', async () => {
    const B = 2 * KiB;
    const N = 1024;
    const block = seededBytes(B, 31);
    const repeated = new Uint8Array(N * B);
    for (let i = 0; i < N; i++) repeated.set(block, i * B);
    // One block the seed lacks, so the scan never completes and meets the found ones again and again.
    const target = new Uint8Array([...repeated, ...seededBytes(B, 32)]);
    const cf = await controlOf(target, B);
    const owner = new BlockIndex(cf);
    const records = new SharedArrayBuffer(cf.records.length);
    new Uint8Array(records).set(cf.records);
    const worker = new BlockIndex({ ...cf, records: new Uint8Array(records) }, owner.share(records, cf.hashLengths));
    const seed = padded(new Uint8Array([...repeated, ...repeated, ...repeated]), 2 * B);
    for (const index of [worker, owner]) {
      const m = new SeedMatcher(index, await createMd4());
      m.scan(seed, 0, seed.length - 2 * B, () => undefined);
      expect(m.knownCount).toBe(N);
      // Walking the chain of N found blocks at each of the ~3N aligned windows: ~3N² candidates.
      expect(m.work.candidates).toBeLessThan(20 * N);
    }
  });
});
