import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4 } from '../../src/engine/md4.js';
import { planRanges } from '../../src/engine/plan.js';
import { lcg, seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

/** Scan the whole seed in one buffer (with zsync's zero padding) and rebuild what was found. */
async function scan(target: Uint8Array, seed: Uint8Array, blockSize: number) {
  const index = new BlockIndex(await controlOf(target, blockSize));
  const matcher = new SeedMatcher(index, await createMd4());
  const ctx = index.seqMatches * blockSize;
  const buf = new Uint8Array(seed.length + ctx);
  buf.set(seed);
  const rebuilt = new Uint8Array(target.length);
  matcher.scan(buf, 0, seed.length, (id, pos) => {
    rebuilt.set(buf.subarray(pos, pos + Math.min(blockSize, target.length - id * blockSize)), id * blockSize);
  });
  const missing = [...matcher.known.keys()].filter((i) => !matcher.known[i]);
  return { matcher, missing, rebuilt, index };
}

function edit(data: Uint8Array, at: number, remove: number, insert: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new Uint8Array([...data.subarray(0, at), ...insert, ...data.subarray(at + remove)]);
}

describe('seed matcher', () => {
  it('finds every block zsync finds in the zsync-format.md client vector', async () => {
    const v3 = lcg(70000, 3);
    let seed = edit(v3, 3000, 0, new TextEncoder().encode('XXXXX'));
    seed[40000] = seed[40000]! ^ 0xff;
    seed = edit(seed, 60000, 10);
    const { missing, rebuilt } = await scan(v3, seed, 2048);
    // zsync 0.6.2 fetches blocks 0, 1, 19 and 29 (bytes=0-4095,38912-40959,59392-61439).
    for (const id of missing) expect([0, 1, 19, 29]).toContain(id);
    expect(missing).toEqual(expect.arrayContaining([1, 19, 29]));
    for (let id = 0; id < 35; id++) {
      if (missing.includes(id)) continue;
      expect(Buffer.from(rebuilt.subarray(id * 2048, (id + 1) * 2048)).equals(Buffer.from(v3.subarray(id * 2048, Math.min(70000, (id + 1) * 2048))))).toBe(true);
    }
  });

  it('an identical seed yields every block, including the short last one', async () => {
    const data = seededBytes(100_003, 1);
    const { missing, rebuilt } = await scan(data, data, 4096);
    expect(missing).toEqual([]);
    expect(Buffer.from(rebuilt).equals(Buffer.from(data))).toBe(true);
  });

  it('finds everything after an insertion near the start shifts the rest', async () => {
    const data = seededBytes(1 << 20, 2);
    const seed = edit(data, 1000, 0, new Uint8Array(16).fill(7));
    const { missing } = await scan(data, seed, 4096);
    expect(missing.length).toBeLessThanOrEqual(2);
  });

  it('unrelated data matches nothing', async () => {
    const { missing, index } = await scan(seededBytes(300_000, 3), seededBytes(300_000, 4), 2048);
    expect(missing.length).toBe(index.count);
  });

  it('identical blocks in the target are all filled from one seed hit', async () => {
    const block = seededBytes(2048, 5);
    const target = new Uint8Array(2048 * 6);
    for (let i = 0; i < 6; i++) target.set(block, i * 2048);
    const { missing } = await scan(target, target.subarray(0, 4096), 2048);
    expect(missing.length).toBeLessThanOrEqual(1); // the last block only comes by continuation
  });

  it('plans merged ranges clamped to the end of the file', () => {
    const known = new Uint8Array([0, 0, 1, 0, 1, 1, 0]);
    expect(planRanges(known, 1000, 6500)).toEqual([{ start: 0, end: 2000 }, { start: 3000, end: 4000 }, { start: 6000, end: 6500 }]);
    expect(planRanges(known, 1000, 6500, 1000)).toEqual([{ start: 0, end: 4000 }, { start: 6000, end: 6500 }]);
  });
});
