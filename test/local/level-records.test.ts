// Several block sizes from one read: the records equal those the one-level path (a streaming
// BlockRecordWriter per block size) writes, whatever the split into chunks, threads or tail.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { BlockRecordWriter } from '../../src/engine/block-records.js';
import { createStrongHasher } from '../../src/engine/strong-hash.js';
import { zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';
import { writeLevelRecords } from '../../src/local/level-records.js';
import { readSignature, readSignatures } from '../../src/local/signature-reader.js';
import { seededBytes } from '../helpers/data.js';

async function oneLevel(data: Uint8Array, blockSize: number): Promise<Uint8Array> {
  const h = zsyncmakeHashLengths(data.length, blockSize);
  const out = new Uint8Array(Math.ceil(data.length / blockSize) * (h.rsumBytes + h.checksumBytes));
  const writer = new BlockRecordWriter(await createStrongHasher('MD4'), blockSize, h, out, 0);
  writer.update(data);
  writer.finish();
  return out;
}

describe('writeLevelRecords: coarse weak sums combined from the fine ones', () => {
  it.each([
    ['whole blocks', 1 << 20, [2048, 65536]],
    ['a short tail inside the last fine block', (1 << 20) + 777, [2048, 65536, 1 << 19]],
    ['a tail of a few fine blocks', (3 << 18) + 5 * 2048, [2048, 262144]],
    ['all 0xff bytes (sums wrap)', 0, [4096, 1 << 20]],
    ['sizes that do not divide each other', 300_000, [3000, 4096]],
  ])('%s', async (_what, size, blockSizes) => {
    const data = size === 0 ? new Uint8Array(3 << 20).fill(255) : seededBytes(size, size);
    const levels = blockSizes.map((blockSize) => ({ blockSize, hashLengths: zsyncmakeHashLengths(data.length, blockSize) }));
    const outs = levels.map((l) => new Uint8Array(Math.ceil(data.length / l.blockSize) * (l.hashLengths.rsumBytes + l.hashLengths.checksumBytes)));
    writeLevelRecords(await createStrongHasher('MD4'), data, levels, outs, levels.map(() => 0));
    for (const [i, l] of levels.entries()) expect(Buffer.from(outs[i]!).equals(Buffer.from(await oneLevel(data, l.blockSize))), `block size ${l.blockSize}`).toBe(true);
  });
});

describe('readSignatures: every level, the SHA-1 and the sha512 from one read', () => {
  let tmp: DirectoryResult;
  beforeAll(async () => { tmp = await dir({ unsafeCleanup: true }); });
  afterAll(async () => { await tmp.cleanup(); });

  it.each([
    ['one thread, small file', 5_000_123, 0, [2048, 16384]],
    ['hashing threads, coarse blocks larger than a chunk (streamed)', (40 << 20) + 4095, 1, [4096, 8 << 20]],
    ['hashing threads, both levels in the workers', (36 << 20) + 1, 2, [2048, 1 << 19]],
  ])('%s', async (_what, size, workers, blockSizes) => {
    const data = seededBytes(size, 11);
    const path = join(tmp.path, `f-${size}`);
    await writeFile(path, data);
    const many = await readSignatures(path, { levels: blockSizes.map((blockSize) => ({ blockSize })), sha512: true, workers });
    expect(many.sha1).toBe(createHash('sha1').update(data).digest('hex'));
    expect(many.sha512).toBe(createHash('sha512').update(data).digest('base64'));
    for (const [i, blockSize] of blockSizes.entries()) {
      const single = await readSignature(path, { blockSize, workers: 0 });
      expect(many.levels[i]!.blockSize).toBe(blockSize);
      expect(Buffer.from(many.levels[i]!.records).equals(Buffer.from(single.records)), `block size ${blockSize}`).toBe(true);
    }
    expect(many.threads).toBe(size >= 32 << 20 ? workers : 0);

    // With a sink the records are handed over as they are made, in any order, and not kept.
    const got = blockSizes.map(() => new Map<number, Uint8Array>());
    const sunk = await readSignatures(path, { levels: blockSizes.map((blockSize, i) => ({ blockSize, sink: (records: Uint8Array, at: number) => void got[i]!.set(at, records.slice()) })), workers });
    for (const [i, level] of sunk.levels.entries()) {
      expect(level.records).toHaveLength(0);
      const joined = Buffer.concat([...got[i]!.entries()].sort(([a], [b]) => a - b).map(([, r]) => r));
      expect(joined.equals(Buffer.from(many.levels[i]!.records)), `block size ${blockSizes[i]} through the sink`).toBe(true);
    }
  });
});
