// The hashing workers outlive one read: a second file starts none, two reads at once share them
// and each gets its own records, and a worker that died is replaced by the next read.

import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireHashWorkers, closeHashWorkers, hashPoolStats, releaseHashWorkers } from '../../src/local/hash-pool.js';
import { readSignature, readSignatures } from '../../src/local/signature-reader.js';
import { workerUrl } from '../../src/local/worker-url.js';
import { seededBytes } from '../helpers/data.js';

describe('hash workers kept between reads', () => {
  let tmp: DirectoryResult;
  const files: Array<{ path: string; data: Uint8Array }> = [];
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    for (const seed of [1, 2]) {
      const data = seededBytes((33 << 20) + seed * 1000, seed);
      const path = join(tmp.path, `f${seed}`);
      await writeFile(path, data);
      files.push({ path, data });
    }
  });
  afterAll(async () => {
    await closeHashWorkers();
    await tmp.cleanup();
  });

  const expected = async (i: number, blockSize: number) => (await readSignature(files[i]!.path, { blockSize, workers: 0 })).records;

  it('a second read starts no worker', async () => {
    const first = await readSignatures(files[0]!.path, { levels: [{ blockSize: 4096 }], workers: 1 });
    expect(first.threads).toBe(1);
    const started = hashPoolStats.started;
    const second = await readSignatures(files[1]!.path, { levels: [{ blockSize: 4096 }], workers: 1 });
    expect(second.threads).toBe(1);
    expect(hashPoolStats.started).toBe(started);
    expect(Buffer.from(second.levels[0]!.records).equals(Buffer.from(await expected(1, 4096)))).toBe(true);
  });

  it('two reads at once share the workers and each gets its own records', async () => {
    const [a, b] = await Promise.all(files.map((f) => readSignatures(f.path, { levels: [{ blockSize: 2048 }, { blockSize: 1 << 19 }], sha512: true, workers: 1 })));
    for (const [i, got] of [a!, b!].entries()) {
      expect(got.sha512).toBe(createHash('sha512').update(files[i]!.data).digest('base64'));
      expect(Buffer.from(got.levels[0]!.records).equals(Buffer.from(await expected(i, 2048)))).toBe(true);
      expect(Buffer.from(got.levels[1]!.records).equals(Buffer.from(await expected(i, 1 << 19)))).toBe(true);
    }
  });

  it('a worker that died is replaced', async () => {
    const url = workerUrl('hash-worker')!;
    const [worker] = acquireHashWorkers(1, url);
    releaseHashWorkers([worker!]);
    const started = hashPoolStats.started;
    await worker!.terminate();
    const again = await readSignatures(files[0]!.path, { levels: [{ blockSize: 4096 }], workers: 1 });
    expect(hashPoolStats.started).toBe(started + 1);
    expect(Buffer.from(again.levels[0]!.records).equals(Buffer.from(await expected(0, 4096)))).toBe(true);
  });
});
