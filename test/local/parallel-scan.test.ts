// The seed scan on worker threads finds exactly what the one-thread scan finds (the same blocks,
// so the same ranges fetched) and writes the same bytes, on seeds cut into many small parts so
// that matches, jumps and continuations straddle part boundaries, and blocks found in one part
// turn up again in the next (zero runs, repeated content). Needs the built worker (npm run build).

import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4 } from '../../src/engine/md4.js';
import { planRanges } from '../../src/engine/plan.js';
import { ParallelScan } from '../../src/local/parallel-scan.js';
import { scanSeedFile } from '../../src/local/seed-scan.js';
import type { ControlFile } from '../../src/format/control-file.js';
import { zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';
import { scatteredEdits, seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'zpump-parallel-scan-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let run = 0;
async function scanWith(target: Uint8Array, seeds: Uint8Array[], blockSize: number, threads: number, partBytes: number) {
  const cf = await controlOf(target, blockSize);
  const index = new BlockIndex(cf);
  const md4 = await createMd4();
  const matcher = new SeedMatcher(index, md4);
  const tag = run++;
  const seedPaths: string[] = [];
  for (const [i, s] of seeds.entries()) {
    seedPaths.push(join(dir, `seed-${tag}-${i}`));
    await writeFile(seedPaths[i]!, s);
  }
  const outPath = join(dir, `out-${tag}`);
  await writeFile(outPath, new Uint8Array(0));
  await truncate(outPath, target.length);
  const fd = openSync(outPath, 'r+');
  const parallel = threads > 1 ? ParallelScan.start(cf, index, outPath, threads, partBytes) : undefined;
  if (threads > 1) expect(parallel, 'the scan worker is built (npm run build)').toBeDefined();
  const shift = new Float64Array(index.count);
  try {
    for (const path of seedPaths) {
      if (matcher.complete) break;
      await scanSeedFile(path, {
        index, matcher, md4, shift, parallel,
        sink: (id, buf, pos) => { writeSync(fd, buf, pos, Math.min(blockSize, target.length - id * blockSize), id * blockSize); },
      });
    }
  } finally {
    await parallel?.close();
    closeSync(fd);
  }
  return { known: Array.from(matcher.known), out: await readFile(outPath), work: parallel?.work, ranges: planRanges(matcher.known, blockSize, target.length) };
}

async function expectSameAsOneThread(target: Uint8Array, seeds: Uint8Array[], blockSize: number, partBytes: number, threads = 2) {
  const one = await scanWith(target, seeds, blockSize, 1, partBytes);
  const many = await scanWith(target, seeds, blockSize, threads, partBytes);
  expect(many.work!.parts).toBeGreaterThanOrEqual(2); // the seed really was cut
  expect(many.known).toEqual(one.known);
  expect(many.ranges).toEqual(one.ranges);
  for (let id = 0; id < one.known.length; id++) {
    if (!one.known[id]) continue;
    const end = Math.min(target.length, (id + 1) * blockSize);
    if (!many.out.subarray(id * blockSize, end).equals(Buffer.from(target.subarray(id * blockSize, end)))) throw new Error(`block ${id} differs`);
  }
  return { one, many };
}

describe('threads for large block counts', () => {
  it('a 1 GiB target at 2 KiB blocks (524 288 blocks) is scanned on two threads; --threads 1 on one', async () => {
    // Workers read the main thread's index in place; each copy of it (~24 bytes a block) kept
    // them out of this size before. Records are random: only the sizes matter here.
    const length = 2 ** 30;
    const blockSize = 2 * KiB;
    const hashLengths = zsyncmakeHashLengths(length, blockSize);
    const records = seededBytes((length / blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes), 41);
    const cf: ControlFile = { zsyncVersion: '0.6.2', blockSize, length, hashLengths, urls: [], extraHeaders: [], records };
    const index = new BlockIndex(cf);
    const outPath = join(dir, 'large-out');
    const two = ParallelScan.start(cf, index, outPath, 2);
    expect(two).toBeDefined();
    await two!.close();
    expect(ParallelScan.start(cf, index, outPath, 1)).toBeUndefined();
  });
});

describe('seed scan on worker threads equals the one-thread scan', () => {
  const old = seededBytes(6 * MiB + 777, 1);

  it('identical seed, 64 KiB blocks, 1 MiB parts: every decision taken over from the workers', async () => {
    const { many } = await expectSameAsOneThread(old, [old], 64 * KiB, MiB);
    expect(many.known.every((k) => k === 1)).toBe(true);
    expect(many.work!.adopted).toBeGreaterThan(0);
    // This thread scans only around part boundaries.
    expect(many.work!.fallbackBytes).toBeLessThan(old.length / 4);
  });

  it('insertions and scattered rewrites (matches straddle part boundaries at odd offsets)', async () => {
    const next = scatteredEdits(concat(old.subarray(0, 5000), seededBytes(16, 3), old.subarray(5000)), 12, 4);
    await expectSameAsOneThread(next, [concat(seededBytes(333, 5), old)], 64 * KiB, MiB);
    await expectSameAsOneThread(next, [old], 2 * KiB, 256 * KiB);
  });

  it('the sync differential cases: appended, truncated, entirely different', async () => {
    await expectSameAsOneThread(concat(old, seededBytes(old.length >>> 4, 4)), [old], 64 * KiB, MiB);
    await expectSameAsOneThread(old.subarray(0, Math.floor(old.length * 0.75) + 123), [old], 64 * KiB, MiB);
    await expectSameAsOneThread(seededBytes(old.length, 77), [old], 2 * KiB, MiB);
  });

  it('a zero run after a changed block (blocks found in one part recur in every later part)', async () => {
    const target = concat(seededBytes(64 * KiB, 6), new Uint8Array(5 * MiB + 12345));
    const seed = target.slice();
    seed.set([1, 2, 3, 4, 5], 5000);
    await expectSameAsOneThread(target, [seed], 64 * KiB, MiB);
    await expectSameAsOneThread(target, [seed], 2 * KiB, 512 * KiB);
  });

  it('a worker re-finding known zero blocks jumps over a block that only the one-thread scan sees', async () => {
    // Two workers start together, knowing nothing, on parts 1 and 2 while this thread scans part 0
    // (unrelated bytes: it finds, and so unlinks, nothing). Part 1's worker finds the zero blocks;
    // part 2's, on zeros too, takes them again and jumps 2 blocks; block W starts 100 bytes before
    // where it lands (its first 100 bytes are zeros), so only a scan that knows the zero blocks
    // are found, and rolls on, meets W.
    const B = 64 * KiB;
    const w = concat(new Uint8Array(100), seededBytes(B - 100, 11));
    const w2 = seededBytes(B, 12);
    const target = concat(seededBytes(B, 10), new Uint8Array(32 * B), w, w2, seededBytes(16 * B, 13));
    const zerosUntil = 2 * MiB + 2 * B - 100;
    const seed = concat(seededBytes(MiB + B, 14), new Uint8Array(zerosUntil - MiB - B), w, w2, seededBytes(16 * B, 15));
    const { one, many } = await expectSameAsOneThread(target, [seed], B, MiB, 3);
    expect(one.known[33]).toBe(1); // W
    expect(one.known[34]).toBe(1); // and its successor (the pair)
    expect(many.work!.ownParts).toBeGreaterThanOrEqual(1);
    expect(many.work!.fallbackBytes).toBeGreaterThan(0);
  });

  it('repeated content, and blocks spread over two seeds', async () => {
    const r = seededBytes(MiB + 5000, 7);
    const target = concat(r, r, r, seededBytes(MiB, 8));
    await expectSameAsOneThread(target, [concat(r, seededBytes(100, 9), r, r)], 64 * KiB, MiB);
    await expectSameAsOneThread(old, [old.subarray(0, 3 * MiB + 99), old.subarray(3 * MiB)], 64 * KiB, MiB);
  });

  it('a uniform seed with a zero block\'s weak sums, 1 MiB blocks', async () => {
    const B = MiB;
    const target = concat(seededBytes(2 * B, 2), new Uint8Array(6 * B), seededBytes(B, 3));
    const seed = concat(new Uint8Array(8 * B).fill(1), seededBytes(2 * B, 2), new Uint8Array(3 * B));
    await expectSameAsOneThread(target, [seed], B, 4 * MiB);
  });
});
