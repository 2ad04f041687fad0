// Blocks looked for at likely places with the hashing on a worker thread (local/parallel-places.ts)
// find exactly what the one-thread tryBlocksAt finds, take them in the same order with the same
// shifts and bytes, in place, shifted either way, past the seed's end, with blocks already known
// and tasks that overlap; and the two-level coarse slide follows a shift it learned with a check
// per block instead of sliding on (work counted, never timed). Needs the built worker (npm run build).

import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4 } from '../../src/engine/md4.js';
import { scanCoarse } from '../../src/local/coarse-scan.js';
import { tryBlocksAt, type BlockTarget } from '../../src/local/likely-places.js';
import { PlacesPool, type PlaceTask } from '../../src/local/parallel-places.js';
import { controlOf } from '../helpers/control-files.js';
import { concat, scatteredEdits, seededBytes } from '../helpers/data.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'zpump-parallel-places-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

let run = 0;
async function seedFile(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `seed-${run++}`);
  await writeFile(path, bytes);
  return path;
}

interface Outcome {
  known: number[];
  shift: number[];
  /** Every write, in order: block id and a digest of the bytes handed over. */
  writes: string[];
}

/** A target for `target`'s blocks, with `preKnown` already found, recording every write. */
async function targetOf(target: Uint8Array, blockSize: number, preKnown: (id: number) => boolean) {
  const cf = await controlOf(target, blockSize);
  const index = new BlockIndex(cf);
  const hasher = await createMd4();
  const known = new Uint8Array(index.count);
  for (let id = 0; id < known.length; id++) known[id] = preKnown(id) ? 1 : 0;
  const matcher = new SeedMatcher(index, hasher, known);
  const writes: string[] = [];
  const t: BlockTarget = {
    index, matcher, hasher, shift: new Float64Array(index.count).fill(NaN),
    write: (id, buf, pos) => {
      const n = Math.min(blockSize, target.length - id * blockSize);
      writes.push(`${id}:${createHash('sha1').update(buf.subarray(pos, pos + n)).digest('hex')}`);
    },
  };
  const outcome = (): Outcome => ({ known: Array.from(matcher.known), shift: Array.from(t.shift, (s) => (Number.isNaN(s) ? -0.5 : s)), writes });
  return { cf, t, outcome };
}

async function placesBoth(target: Uint8Array, seed: Uint8Array, blockSize: number, tasks: PlaceTask[], preKnown: (id: number) => boolean = () => false, hereEvery?: number) {
  const path = await seedFile(seed);
  const one = await targetOf(target, blockSize, preKnown);
  const fh = await open(path, 'r');
  const buf = new Uint8Array(Math.max(blockSize, MiB));
  try {
    for (const task of tasks) await tryBlocksAt(fh, path, seed.length, one.t, task.first, task.last, task.shift, buf);
  } finally {
    await fh.close();
  }
  const many = await targetOf(target, blockSize, preKnown);
  const pool = PlacesPool.create(2, hereEvery === undefined ? {} : { hereEvery });
  expect(pool, 'the places worker is built (npm run build)').toBeDefined();
  pool!.addLevel(7, many.cf);
  // The worker writes what it finds into an output file; this thread is told of each block.
  const outPath = join(dir, `out-${run++}`);
  await writeFile(outPath, new Uint8Array(target.length));
  pool!.setOutput(outPath);
  const t = { ...many.t, places: { pool: pool!, level: 7, written: many.t.write } };
  const fh2 = await open(path, 'r');
  try {
    await pool!.tryAt(fh2, path, seed.length, t, 7, tasks);
  } finally {
    await fh2.close();
    await pool!.close();
  }
  // Blocks the worker wrote are the target's; those this thread checked itself it handed to `write` (recorded, not written).
  const out = await readFile(outPath);
  let inFile = 0;
  for (let id = 0; id < many.t.index.count; id++) {
    const end = Math.min(target.length, (id + 1) * blockSize);
    const got = out.subarray(id * blockSize, end);
    if (got.every((b) => b === 0)) continue;
    inFile++;
    if (!got.equals(Buffer.from(target.subarray(id * blockSize, end)))) throw new Error(`block ${id} of the output differs`);
  }
  return { one: one.outcome(), many: many.outcome(), work: pool!.work, inFile };
}

describe('places checked on a worker thread equal the one-thread check', () => {
  const old = seededBytes(5 * MiB + 777, 1);

  it('in place, with scattered rewrites and a last partial block', async () => {
    const B = 4 * KiB;
    const n = Math.ceil(old.length / B);
    const { one, many, work, inFile } = await placesBoth(scatteredEdits(old, 40, 2), old, B, [{ first: 0, last: n, shift: 0 }]);
    expect(many).toEqual(one);
    expect(one.known.filter((k) => k === 0).length).toBeGreaterThanOrEqual(40); // the rewrites stay missing
    expect(one.known[n - 1]).toBe(1);
    expect(work.pieces).toBeGreaterThanOrEqual(5); // ~1 MiB pieces: several in flight at once
    expect(work.blocks).toBe(n);
    expect(inFile).toBeGreaterThan(0);
  });

  it('shifted both ways, overlapping tasks, blocks already known, pieces past the seed', async () => {
    const B = 4 * KiB;
    // The target is the seed with 16 bytes inserted and 100 deleted further on: three shifts.
    const target = concat(old.subarray(0, 300_000), seededBytes(16, 3), old.subarray(300_000, 3_000_000), old.subarray(3_000_100));
    const n = Math.ceil(target.length / B);
    const tasks = [{ first: 0, last: n, shift: 0 }, { first: 50, last: n, shift: -16 }, { first: 0, last: n, shift: 84 }, { first: n - 300, last: n + 0, shift: 5 * MiB }];
    const { one, many, work } = await placesBoth(target, old, B, tasks, (id) => id % 7 === 3);
    expect(many).toEqual(one);
    const shifts = new Set(one.shift);
    expect(shifts.has(0) && shifts.has(-16) && shifts.has(84)).toBe(true);
    expect(work.strong).toBeGreaterThan(0);
  });

  it('this thread checking every other piece gives the same, and so does a seed shorter than the target', async () => {
    const B = 8 * KiB;
    const target = scatteredEdits(old, 9, 5);
    const n = Math.ceil(target.length / B);
    const half = await placesBoth(target, old, B, [{ first: 0, last: n, shift: 0 }], () => false, 2);
    expect(half.many).toEqual(half.one);
    expect(half.work.here).toBeGreaterThan(0);
    expect(half.work.here).toBeLessThan(half.work.pieces);
    const short = await placesBoth(target, old.subarray(0, 3 * MiB + 5), B, [{ first: 0, last: n, shift: 0 }, { first: 0, last: n, shift: -B }]);
    expect(short.many).toEqual(short.one);
    expect(short.one.known.slice(Math.ceil((3 * MiB + 5) / B) + 1).every((k) => k === 0)).toBe(true);
  });

  it('coarse blocks (a piece holds one block) and a level that was never registered', async () => {
    const B = 1 * MiB;
    const n = Math.ceil(old.length / B);
    const { one, many } = await placesBoth(scatteredEdits(old, 2, 6), old, B, [{ first: 0, last: n, shift: 0 }]);
    expect(many).toEqual(one);
    const pool = PlacesPool.create(2)!;
    const { t } = await targetOf(old, B, () => false);
    const fh = await open(await seedFile(old), 'r');
    try {
      await expect(pool.tryAt(fh, 'x', old.length, t, 3, [{ first: 0, last: n, shift: 0 }])).rejects.toThrow(/never registered/);
    } finally {
      await fh.close();
      await pool.close();
    }
  });

  it('an unreadable seed fails with E_BAD_INPUT, not a crash', async () => {
    const B = 64 * KiB;
    const n = Math.ceil(old.length / B);
    const pool = PlacesPool.create(2)!;
    const { cf, t } = await targetOf(old, B, () => false);
    pool.addLevel(0, cf);
    const path = await seedFile(old);
    const fh = await open(path, 'r');
    try {
      // The worker opens the seed by name: gone by then.
      await expect(pool.tryAt(fh, join(dir, 'gone'), old.length, t, 0, [{ first: 0, last: n, shift: 0 }])).rejects.toMatchObject({ code: 'E_BAD_INPUT' });
    } finally {
      await fh.close();
      await pool.close();
    }
  });
});

describe('the coarse slide follows a shift it learned', () => {
  // 16 bytes inserted near the start shift every coarse block after it: none is in place.
  const B = 256 * KiB;
  const old = seededBytes(24 * MiB + 999, 8);
  const next = concat(old.subarray(0, 5000), seededBytes(16, 9), old.subarray(5000));

  async function coarse(threads: number) {
    const path = await seedFile(old);
    const { cf, t, outcome } = await targetOf(next, B, () => false);
    const pool = PlacesPool.create(threads);
    pool?.addLevel(0, cf);
    try {
      await scanCoarse(path, { ...t, ...(pool ? { places: { pool, level: 0 } } : {}) });
    } finally {
      await pool?.close();
    }
    return { outcome: outcome(), matcher: t.matcher, work: pool?.work };
  }

  it('finds every shifted block with a check per block, on the worker or not, alike', async () => {
    const one = await coarse(1);
    const many = await coarse(2);
    expect(many.outcome).toEqual(one.outcome);
    const n = one.outcome.known.length;
    expect(one.outcome.known.slice(1).every((k) => k === 1)).toBe(true); // all but the block with the insert
    expect(one.outcome.shift.slice(1).map((s, i) => [i + 1, s]).filter(([, s]) => s !== -16)).toEqual([]); // seed offset - target offset
    // The slide found the shift on one or two blocks; the rest were checked where it says, not slid to.
    expect(one.matcher.work.strongHashes).toBeLessThan(8);
    expect(many.matcher.work.strongHashes).toBeLessThan(8);
    // Each block was checked once, where the shift says: no in-place pass before (nothing is in place).
    expect(many.work!.blocks).toBeGreaterThanOrEqual(n - 4);
    expect(many.work!.blocks).toBeLessThan(n + 4);
  });

  it('an insertion, a rewrite further on, then a deletion: every other block found at its own shift', async () => {
    const rewriteAt = 30 * B + 1000;
    const cutAt = 60 * B + 5000;
    const edited = concat(old.subarray(0, rewriteAt), seededBytes(4096, 10), old.subarray(rewriteAt + 4096, cutAt), old.subarray(cutAt + 100));
    const target = concat(edited.subarray(0, 5000), seededBytes(16, 9), edited.subarray(5000));
    const path = await seedFile(old);
    for (const threads of [1, 2]) {
      const { cf, t, outcome } = await targetOf(target, B, () => false);
      const pool = PlacesPool.create(threads);
      pool?.addLevel(0, cf);
      try {
        await scanCoarse(path, { ...t, ...(pool ? { places: { pool, level: 0 } } : {}) });
      } finally {
        await pool?.close();
      }
      const { known, shift } = outcome();
      // Target blocks holding the insertion (0), the rewrite (30) and the cut (60), and nothing else, are missing.
      expect(known.flatMap((k, id) => (k ? [] : [id]))).toEqual([0, 30, 60]);
      expect(shift.slice(1, 30).every((x) => x === -16) && shift.slice(31, 60).every((x) => x === -16)).toBe(true);
      expect(shift.slice(61).every((x) => x === 84)).toBe(true);
    }
  });
});
