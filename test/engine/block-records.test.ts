import { describe, expect, it } from 'vitest';
import { BlockRecordWriter } from '../../src/engine/block-records.js';
import { createMd4, md4Padded } from '../../src/engine/md4.js';
import { zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';
import { lcg, mod251, seededBytes } from '../helpers/data.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

async function records(data: Uint8Array, blockSize: number, pieces: number[] = [data.length]): Promise<Uint8Array> {
  const h = zsyncmakeHashLengths(data.length, blockSize);
  const out = new Uint8Array(Math.ceil(data.length / blockSize) * (h.rsumBytes + h.checksumBytes));
  const writer = new BlockRecordWriter(await createMd4(), blockSize, h, out, 0);
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = pieces[i % pieces.length]!;
    writer.update(data.subarray(pos, pos + n));
    pos += n;
  }
  writer.finish();
  return out;
}

describe('block records', () => {
  it('MD4 matches the RFC 1320 and zero-block check values', async () => {
    const md4 = await createMd4();
    expect(hex(md4Padded(md4, new Uint8Array(0), 0, 0, 0))).toBe('31d6cfe0d16ae931b73c59d7e0c089c0');
    expect(hex(md4Padded(md4, new TextEncoder().encode('abc'), 0, 3, 3))).toBe('a448017aaf21d8525fc10ae87aa6729d');
    expect(hex(md4Padded(md4, new Uint8Array(0), 0, 0, 2048))).toBe('e7b9e6b0e2454e20d7380922c7a0b221');
  });

  it.each([
    ['v1', new TextEncoder().encode('Hello, zsync!\n'), 2048, 'f45d690499', 'f45d690499'],
    ['v2', mod251(5000), 1024, '2ad0af4c33', '917e9418a1'],
    ['v3', lcg(70000, 3), 2048, '53572215d2b8', 'feaa2d15747c'],
    ['v6', lcg(131072, 1), 131072, 'd20cd44c05cb3a800a', 'd20cd44c05cb3a800a'],
    ['v7', lcg(4097, 1), 8192, '72d1a59dc544d079', '72d1a59dc544d079'],
  ] as const)('%s: first and last records equal zsyncmake’s', async (_name, data, blockSize, first, last) => {
    const out = await records(data, blockSize);
    const recLen = first.length / 2;
    expect(hex(out.subarray(0, recLen))).toBe(first);
    expect(hex(out.subarray(out.length - recLen))).toBe(last);
  });

  it('streaming in pieces of any size equals one pass', async () => {
    const data = seededBytes(200_003, 11);
    const whole = hex(await records(data, 4096));
    for (const pieces of [[1], [7, 4096, 13], [4095], [4097], [65536, 3]]) {
      expect(hex(await records(data, 4096, pieces))).toBe(whole);
    }
  });
});

describe('block records with spec 0.8 strong hashes', () => {
  it.each(['MD5', 'SHA-224'] as const)('%s records are the same whether blocks arrive whole or split across pieces', async (name) => {
    const { createStrongHasher, DIGEST_BYTES, strongPadded } = await import('../../src/engine/strong-hash.js');
    const { createHash } = await import('node:crypto');
    const data = seededBytes(10_000, 6);
    const blockSize = 1024;
    const h = { seqMatches: 1 as const, rsumBytes: 4, checksumBytes: DIGEST_BYTES[name] };
    const recLen = 4 + DIGEST_BYTES[name];
    const make = async (pieces: number[]): Promise<Uint8Array> => {
      const out = new Uint8Array(Math.ceil(data.length / blockSize) * recLen);
      const writer = new BlockRecordWriter(await createStrongHasher(name), blockSize, h, out, 0);
      for (let pos = 0, i = 0; pos < data.length; i++) {
        const n = pieces[i % pieces.length]!;
        writer.update(data.subarray(pos, pos + n));
        pos += n;
      }
      writer.finish();
      return out;
    };
    const whole = await make([data.length]);
    expect(hex(await make([1, 333, 1024, 7000]))).toBe(hex(whole));
    // Each record's digest is node's own over the zero-padded block; strongPadded agrees.
    const algorithm = name === 'MD5' ? 'md5' : 'sha224';
    const hasher = await createStrongHasher(name);
    for (let b = 0; b * blockSize < data.length; b++) {
      const block = new Uint8Array(blockSize);
      block.set(data.subarray(b * blockSize, (b + 1) * blockSize));
      const digest = createHash(algorithm).update(block).digest('hex');
      expect(hex(whole.subarray(b * recLen + 4, (b + 1) * recLen))).toBe(digest);
      expect(hex(strongPadded(hasher, data, b * blockSize, Math.min(data.length, (b + 1) * blockSize), blockSize))).toBe(digest);
    }
  });
});
