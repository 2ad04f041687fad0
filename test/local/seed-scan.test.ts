// The likely-offsets pass after the slide reads a missing block at its own offset in the seed only
// where the slide did not already rule it out there (it rolled over that window with another weak
// sum): on unrelated data nothing is read twice. Counted through SeedScanner.work, never timed;
// the blocks found stay those found before (isolated unchanged blocks between rewritten ones).

import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4 } from '../../src/engine/md4.js';
import { ParallelScan } from '../../src/local/parallel-scan.js';
import { scanSeedFile } from '../../src/local/seed-scan.js';
import { seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

const KiB = 1024;

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'zpump-seed-scan-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let run = 0;
async function scan(target: Uint8Array, seed: Uint8Array, blockSize: number, threads: number) {
  const cf = await controlOf(target, blockSize);
  const index = new BlockIndex(cf);
  const md4 = await createMd4();
  const matcher = new SeedMatcher(index, md4);
  const tag = run++;
  const seedPath = join(dir, `seed-${tag}`);
  await writeFile(seedPath, seed);
  const outPath = join(dir, `out-${tag}`);
  await writeFile(outPath, new Uint8Array(0));
  await truncate(outPath, target.length);
  const fd = openSync(outPath, 'r+');
  const parallel = threads > 1 ? ParallelScan.start(cf, index, outPath, threads, 256 * KiB) : undefined;
  if (threads > 1) expect(parallel, 'the scan worker is built (npm run build)').toBeDefined();
  const work = { ownOffsetBlocks: 0 };
  try {
    await scanSeedFile(seedPath, {
      index, matcher, md4, shift: new Float64Array(index.count), parallel, work,
      sink: (id, buf, pos) => { writeSync(fd, buf, pos, Math.min(blockSize, target.length - id * blockSize), id * blockSize); },
    });
  } finally {
    await parallel?.close();
    closeSync(fd);
  }
  return { known: Array.from(matcher.known), work, count: index.count };
}

describe('likely offsets after the slide', () => {
  for (const threads of [1, 2]) {
    it(`unrelated data: no block is read again at its own offset (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const r = await scan(seededBytes(2048 * KiB + 100, 1), seededBytes(2048 * KiB, 2), 2 * KiB, threads);
      expect(r.known.every((k) => k === 0)).toBe(true);
      // Only the last block (short, so not ruled out by a full window's sum) is tried.
      expect(r.work.ownOffsetBlocks).toBeLessThanOrEqual(1);
    });

    it(`every other block rewritten in place: the isolated unchanged ones are still found (${threads} thread${threads > 1 ? 's' : ''})`, async () => {
      const B = 2 * KiB;
      const seed = seededBytes(1024 * B, 3);
      const target = new Uint8Array(seed);
      for (let id = 0; id < 1024; id += 2) target.set(seededBytes(B, 100 + id), id * B);
      const r = await scan(target, seed, B, threads);
      // The slide finds none of them (each needs its rewritten successor: seq_matches 2) ...
      for (let id = 1; id < 1024; id += 2) expect(r.known[id], `block ${id}`).toBe(1);
      for (let id = 0; id < 1024; id += 2) expect(r.known[id], `block ${id}`).toBe(0);
      // ... and the rewritten ones are not read again: the slide saw other weak sums there.
      expect(r.work.ownOffsetBlocks).toBeLessThanOrEqual(512 + 1);
    });
  }
});
