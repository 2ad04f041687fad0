// The seed scan's work on inputs that used to make it crawl: zero runs after a changed block,
// uniform and periodic seeds whose weak sums equal a zero block's (blocks >= 64 KiB), and
// buckets whose blocks are all found. Work is counted through the matcher's `work` hook (strong
// hashes, candidates visited, lookups), never timed; the strong hasher given to the matcher
// also refuses to run past a budget, so a regression fails fast instead of hashing for minutes.

import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4, type Md4 } from '../../src/engine/md4.js';
import { weakSum } from '../../src/engine/rsum.js';
import { seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

/** An MD4 that throws once asked for more than `budget` digests. */
async function budgetedMd4(budget: number): Promise<Md4> {
  const inner = await createMd4();
  let used = 0;
  const wrapper = {
    init() {
      if (++used > budget) throw new Error(`more than ${budget} strong hashes`);
      inner.init();
      return wrapper;
    },
    update(data: Uint8Array) {
      inner.update(data);
      return wrapper;
    },
    digest(format: 'binary') {
      return inner.digest(format);
    },
  };
  return wrapper as unknown as Md4;
}

/**
 * Scan `seed` (in pieces of `piece` bytes, as the file scan does, or whole) and rebuild what was
 * found; the target's blocks that were not found are left zero in `rebuilt`.
 */
async function scan(target: Uint8Array, seed: Uint8Array, blockSize: number, piece = seed.length) {
  const index = new BlockIndex(await controlOf(target, blockSize));
  const budget = 8 * index.count + 64;
  const matcher = new SeedMatcher(index, await budgetedMd4(budget));
  const ctx = index.seqMatches * blockSize;
  const rebuilt = new Uint8Array(target.length);
  const found: Array<[number, number]> = [];
  for (let base = 0; base < seed.length; ) {
    const end = Math.min(seed.length, base + piece);
    const buf = new Uint8Array(end - base + ctx);
    buf.set(seed.subarray(base, Math.min(seed.length, end + ctx)));
    const stop = matcher.scan(buf, 0, end - base, (id, pos) => {
      found.push([id, base + pos]);
      rebuilt.set(buf.subarray(pos, pos + Math.min(blockSize, target.length - id * blockSize)), id * blockSize);
    }, base);
    base += stop;
  }
  const missing = [...matcher.known.keys()].filter((i) => !matcher.known[i]);
  return { matcher, missing, rebuilt, index, found, budget };
}

/** Target bytes of the blocks not in `missing` equal `rebuilt`'s. */
function expectRebuilt(target: Uint8Array, rebuilt: Uint8Array, missing: number[], blockSize: number): void {
  const skip = new Set(missing);
  for (let id = 0; id * blockSize < target.length; id++) {
    if (skip.has(id)) continue;
    const end = Math.min(target.length, (id + 1) * blockSize);
    if (!Buffer.from(rebuilt.subarray(id * blockSize, end)).equals(Buffer.from(target.subarray(id * blockSize, end)))) throw new Error(`block ${id} rebuilt wrong`);
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const KiB = 1024;
const MiB = 1024 * 1024;

describe('seed scan cost on pathological inputs', () => {
  it('a zero run after a changed block: every zero block found once, then nothing per byte', async () => {
    const B = 64 * KiB;
    const target = concat(seededBytes(64 * KiB, 1), new Uint8Array(8 * MiB + 12345));
    const seed = target.slice();
    seed.set([1, 2, 3, 4, 5], 5000);
    const { missing, rebuilt, index, matcher } = await scan(target, seed, B, 4 * MiB);
    expect(missing).toEqual([0]); // the changed block; the zero blocks, the short last one too
    expectRebuilt(target, rebuilt, missing, B);
    expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count);
    expect(matcher.work.candidates).toBeLessThanOrEqual(8 * index.count + 4096);
    expect(matcher.work.lookups).toBeLessThanOrEqual(4 * index.count + 4096);
  });

  it('a uniform seed whose windows have a zero block\'s weak sum (64 KiB and 1 MiB blocks)', async () => {
    for (const [B, fill] of [[64 * KiB, 0x02], [MiB, 0x01]] as const) {
      const zeros = new Uint8Array(B);
      const uniform = new Uint8Array(B).fill(fill);
      expect(weakSum(uniform, 0, B)).toBe(weakSum(zeros, 0, B)); // the §11 trap, or the test proves nothing
      const target = concat(seededBytes(2 * B, 2), new Uint8Array(6 * B), seededBytes(B, 3));
      const seed = concat(new Uint8Array(8 * B).fill(fill), seededBytes(2 * B, 2));
      const { missing, rebuilt, index, matcher } = await scan(target, seed, B, 4 * B);
      expect(missing).toEqual([2, 3, 4, 5, 6, 7, 8]); // the two random blocks come back, nothing else matches
      expectRebuilt(target, rebuilt, missing, B);
      expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count);
    }
  });

  it('a uniform seed against a target of zeros only: the last block, looked up alone, too', async () => {
    const B = MiB;
    const target = new Uint8Array(8 * B);
    const seed = new Uint8Array(8 * B).fill(1);
    const { missing, index, matcher } = await scan(target, seed, B, 4 * B);
    expect(missing).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count);
    // One lookup per byte only where the next window changes at every byte (the last 2 blocks).
    expect(matcher.work.lookups).toBeLessThanOrEqual(3 * B);
  });

  it('periodic data with a short period, every phase a zero block\'s weak sum (1 MiB blocks)', async () => {
    const B = MiB;
    const period = seededBytes(16, 4);
    const periodic = new Uint8Array(6 * B);
    for (let i = 0; i < periodic.length; i++) periodic[i] = period[i % 16]!;
    expect(weakSum(periodic, 5, 5 + B)).toBe(weakSum(new Uint8Array(B), 0, B));
    const target = concat(seededBytes(B, 5), new Uint8Array(4 * B), seededBytes(B + 99, 6));
    const seed = concat(periodic, seededBytes(B + 99, 6));
    const { missing, rebuilt, index, matcher } = await scan(target, seed, B, 3 * B);
    expect(missing).toEqual([0, 1, 2, 3, 4]);
    expectRebuilt(target, rebuilt, missing, B);
    expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count + 2 * 16);
  });

  it('a bucket whose blocks are all found costs nothing on the windows that follow', async () => {
    const B = 2 * KiB; // a proper weak sum: only zero windows hit the zero blocks
    const target = concat(seededBytes(64 * KiB, 7), new Uint8Array(1000 * B), seededBytes(64 * KiB, 8));
    const seed = concat(seededBytes(64 * KiB, 7), new Uint8Array(4 * MiB), seededBytes(64 * KiB, 8));
    const { missing, rebuilt, index, matcher } = await scan(target, seed, B, MiB);
    expect(missing).toEqual([]);
    expectRebuilt(target, rebuilt, missing, B);
    expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count);
    expect(matcher.work.candidates).toBeLessThanOrEqual(8 * index.count + 4096);
    // Lookups the filter lets through once the zero blocks are found: a bounded number, then none.
    expect(matcher.work.lookups).toBeLessThanOrEqual(4 * index.count + 4096);
  });

  it('distinct windows with the same weak sum are each hashed, so a real match is never skipped', async () => {
    const B = MiB;
    // Two periodic runs whose windows all share the zero weak sum; the second holds a target block.
    const p1 = seededBytes(16, 9);
    const run1 = new Uint8Array(3 * B);
    for (let i = 0; i < run1.length; i++) run1[i] = p1[i % 16]!;
    // Block 1 is the run's last window, which equals (in its first B bytes) every window of the
    // run at the same phase; only there does its successor (block 2) follow.
    const wanted = run1.slice(2 * B);
    const target = concat(new Uint8Array(B), wanted, seededBytes(B, 10));
    const seed = concat(run1, seededBytes(B, 10));
    const { missing, matcher, index } = await scan(target, seed, B, 2 * B);
    expect(missing).toEqual([0]);
    expect(matcher.work.strongHashes).toBeLessThanOrEqual(4 * index.count + 2 * 16);
  });
});
