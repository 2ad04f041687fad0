// make --format 0.8 / --strong-hash and zsyncmake -s: format spec 0.8 files as upstream zsyncmake
// 0.7+ writes them (zsync-format.md §11). Every record is checked against digests computed here,
// independently of the engine: node:crypto for MD5, SHA-224 and SHA-256, hash-wasm's MD4 directly.

import { createHash } from 'node:crypto';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createMD4 } from 'hash-wasm';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSignature } from '../../src/local/signature-reader.js';
import { parseControlFile } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';

const MTIME = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
let tmp: DirectoryResult;
const data = seededBytes(300_001, 8); // a short last block
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'f.bin'), data);
  await utimes(join(tmp.path, 'f.bin'), MTIME, MTIME);
});
afterAll(async () => { await tmp.cleanup(); });

/** zsync's weak sum, written out plainly: a = Σx, b = Σ(B - i)·x, both mod 2^16, as 4 bytes big-endian. */
function weak(block: Uint8Array): number[] {
  let a = 0;
  let b = 0;
  for (let i = 0; i < block.length; i++) {
    a = (a + block[i]!) % 65536;
    b = (b + (block.length - i) * block[i]!) % 65536;
  }
  return [a >> 8, a & 255, b >> 8, b & 255];
}

async function expectedRecords(bytes: Uint8Array, blockSize: number, hash: string): Promise<Buffer> {
  const md4 = await createMD4();
  const out: number[] = [];
  for (let start = 0; start < bytes.length; start += blockSize) {
    const block = new Uint8Array(blockSize); // zero-padded
    block.set(bytes.subarray(start, start + blockSize));
    const digest = hash === 'MD4' ? (md4.init(), md4.update(block), md4.digest('binary')) : createHash(hash === 'MD5' ? 'md5' : 'sha224').update(block).digest();
    out.push(...weak(block), ...digest);
  }
  return Buffer.from(out);
}

describe('zpump make --format 0.8', () => {
  it.each([
    ['md4', 'MD4', 16, 'File-Hash,Strong-Hash-Algorithm'],
    ['md5', 'MD5', 16, 'File-Hash'],
    ['sha224', 'SHA-224', 28, 'File-Hash'],
  ])('--strong-hash %s writes upstream\'s header and records computed independently', async (flag, hash, digest, safe) => {
    const out = join(tmp.path, `f.${flag}.zsync`);
    const run = await runCli(['make', '--force', '--json', '--strong-hash', flag, '-b', '4k', '-u', 'http://x.example/f.bin', '-o', out, 'f.bin'], { cwd: tmp.path });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ engine: 'js', strongHash: hash, fileHash: `SHA-256:${createHash('sha256').update(data).digest('hex')}` });
    const bytes = await readFile(out);
    const headerEnd = bytes.indexOf('\n\n') + 2;
    expect(bytes.subarray(0, headerEnd).toString()).toBe([
      'zsync: 0.8.0', 'Filename: f.bin', 'MTime: Thu, 02 Jan 2020 03:04:05 +0000', 'Blocksize: 4096', 'Length: 300001',
      `Safe: ${safe}`, `Hash-Lengths: 1,4,${digest}`, `Strong-Hash-Algorithm: ${hash}`,
      `File-Hash: SHA-256:${createHash('sha256').update(data).digest('hex')}`, 'URL: http://x.example/f.bin', '', '',
    ].join('\n'));
    expect(bytes.subarray(headerEnd).equals(await expectedRecords(data, 4096, hash))).toBe(true);
    expect(parseControlFile(bytes)).toMatchObject({ strongHash: hash, hashLengths: { seqMatches: 1, rsumBytes: 4, checksumBytes: digest } });
  });

  it('--format 0.8 alone means MD4; the default stays zsync 0.6.2\'s format', async () => {
    await runCli(['make', '--force', '--format', '0.8', '-o', 'a.zsync', 'f.bin'], { cwd: tmp.path });
    expect(parseControlFile(await readFile(join(tmp.path, 'a.zsync')))).toMatchObject({ zsyncVersion: '0.8.0', strongHash: 'MD4' });
    await runCli(['make', '--force', '--engine', 'js', '-o', 'b.zsync', 'f.bin'], { cwd: tmp.path });
    const plain = await readFile(join(tmp.path, 'b.zsync'), 'latin1');
    expect(plain.startsWith('zsync: 0.6.2\n')).toBe(true);
    expect(plain).not.toMatch(/Strong-Hash-Algorithm|File-Hash|Safe/);
    expect(plain).toMatch(/\nSHA-1: [0-9a-f]{40}\n/);
  });

  it.each([
    [['--format', '0.6.2', '--strong-hash', 'md5'], /--strong-hash needs format 0.8/],
    [['--format', '0.8', '--engine', 'zsync'], /written by the js engine/],
    [['--strong-hash', 'sha1'], /expects md4, md5 or sha224/],
    [['--format', '0.7'], /expects 0.6.2 .* or 0.8/],
  ])('refuses %j as a usage error (exit 2)', async (flags, message) => {
    const run = await runCli(['make', '--force', ...flags, '-o', 'never.zsync', 'f.bin'], { cwd: tmp.path });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(message);
    await expect(stat(join(tmp.path, 'never.zsync'))).rejects.toThrow();
  });

  it('hashing threads write the same records as one thread, for every strong hash', async () => {
    const big = join(tmp.path, 'big.bin');
    await writeFile(big, seededBytes((33 << 20) + 5, 9));
    for (const strongHash of ['MD4', 'MD5', 'SHA-224'] as const) {
      const options = { blockSize: 65536, strongHash, fileHash: 'sha256' as const, hashLengths: () => ({ seqMatches: 1 as const, rsumBytes: 4, checksumBytes: strongHash === 'SHA-224' ? 28 : 16 }) };
      const [one, many] = await Promise.all([readSignature(big, { ...options, workers: 0 }), readSignature(big, { ...options, workers: 2 })]);
      expect(many.threads).toBe(2);
      expect(Buffer.from(many.records).equals(Buffer.from(one.records))).toBe(true);
      expect(many.sha256).toBe(one.sha256);
    }
  });
});

describe('zpump zsyncmake -s (upstream 0.7+ flag)', () => {
  it.each(['MD4', 'MD5', 'SHA-224'])('-s %s writes the same bytes as make --strong-hash', async (hash) => {
    const viaDropIn = await runCli(['zsyncmake', '-s', hash, '-b', '2048', '-u', 'f.bin', '-o', `z.${hash}.zsync`, 'f.bin'], { cwd: tmp.path });
    expect(viaDropIn.exitCode, viaDropIn.stderr).toBe(0);
    await runCli(['make', '--force', '--strong-hash', hash, '-b', '2k', '-u', 'f.bin', '-o', `m.${hash}.zsync`, 'f.bin'], { cwd: tmp.path });
    const [a, b] = await Promise.all([readFile(join(tmp.path, `z.${hash}.zsync`)), readFile(join(tmp.path, `m.${hash}.zsync`))]);
    expect(a.equals(b)).toBe(true);
    expect(parseControlFile(a).strongHash).toBe(hash);
  });

  it('refuses an unknown -s like upstream (exit 2), and writes 0.6.2\'s format without -s', async () => {
    const bad = await runCli(['zsyncmake', '-s', 'SHA-1', '-o', 'never.zsync', 'f.bin'], { cwd: tmp.path });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/unsupported strong checksum specified \(SHA-1\)/);
    await runCli(['zsyncmake', '-u', 'f.bin', '-o', 'plain.zsync', 'f.bin'], { cwd: tmp.path });
    expect((await readFile(join(tmp.path, 'plain.zsync'), 'latin1')).startsWith('zsync: 0.6.2\n')).toBe(true);
  });
});
