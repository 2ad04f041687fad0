import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'data.bin'), seededBytes(1 << 20, 4));
  await runCli(['make', '--engine', 'js', '-b', '4k', 'data.bin'], { cwd: tmp.path });
});
afterAll(async () => { await tmp.cleanup(); });

const good = ['zsync: 0.6.2', 'Filename: f', 'Blocksize: 2048', 'Length: 5000', 'Hash-Lengths: 2,2,4', 'URL: f', 'SHA-1: ' + 'a'.repeat(40)];
const file = (lines: string[], recordBytes: number, tail: Uint8Array = new Uint8Array(0)): Uint8Array =>
  new Uint8Array([...Buffer.from(lines.join('\n') + '\n\n'), ...new Uint8Array(recordBytes), ...tail]);
const swap = (key: string, line: string): string[] => good.map((l) => (l.startsWith(key) ? line : l));

describe('zpump inspect', () => {
  it('shows headers, blocks, signature size and usability', async () => {
    const run = await runCli(['inspect', 'data.bin.zsync'], { cwd: tmp.path });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/Blocksize\s+4096 → 256 blocks/);
    expect(run.stdout).toMatch(/usable by\s+js engine: yes; zsync 0.6.2: yes/);
    const j = JSON.parse((await runCli(['inspect', '--json', 'data.bin.zsync'], { cwd: tmp.path })).stdout);
    expect(j).toMatchObject({ length: 1 << 20, blockSize: 4096, blocks: 256, filename: 'data.bin', urls: ['data.bin'], usable: { js: true, zsync: true } });
    expect(j.recordBytes).toBe(256 * (j.hashLengths.rsumBytes + j.hashLengths.checksumBytes));
  });

  it('tells why zsync 0.6.2 could not use an empty-file signature', async () => {
    await writeFile(join(tmp.path, 'empty.zsync'), file(swap('Length', 'Length: 0'), 0));
    const j = JSON.parse((await runCli(['inspect', '--json', 'empty.zsync'], { cwd: tmp.path })).stdout);
    expect(j.usable).toEqual({ js: true, zsync: false });
    expect(j.problems.join(' ')).toMatch(/Length 0/);
  });

  it.each([
    ['truncated', file(good, 10), /truncated/],
    ['hash lengths out of range', file(swap('Hash', 'Hash-Lengths: 3,2,4'), 18), /sequence matches must be 1 or 2/],
    ['block size not a power of two', file(swap('Block', 'Blocksize: 1000'), 18), /power of two/],
    ['absurd length', file(swap('Length', 'Length: 4000000000000000'), 18), /more than the 33554432 zpump keeps in memory/],
    ['binary junk', new Uint8Array([0x7a, 0x73, 0x79, 0x00, 0x01, 0x02, 0x0a, 0x0a]), /control byte/],
    ['not a zsync file', new Uint8Array(Buffer.from('hello world\n\n')), /not a zsync control file/],
    ['unknown header', file([...good, 'Frobnicate: yes'], 18), /does not know/],
  ])('refuses a bad control file (%s) with exit 2 and the reason', async (name, bytes, reason) => {
    const path = join(tmp.path, `${name.replace(/ /g, '-')}.zsync`);
    await writeFile(path, bytes);
    const run = await runCli(['inspect', path]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(reason);
    expect(run.stderr).toContain(path);
  });

  // Issue 8 item 6: geometry the engines cannot hold is refused by inspect and by sync (every
  // engine) alike, before anything is allocated from it: exit 2 and the reason.
  it.each([
    ['1 GiB blocks', swap('Block', 'Blocksize: 1073741824'), 1 * 6, /Blocksize must be a power of two up to 67108864 \(64 MiB/],
    ['128 MiB blocks', swap('Block', 'Blocksize: 134217728'), 1 * 6, /up to 67108864/],
    ['Length 2^52', swap('Length', `Length: ${2 ** 52}`).map((l) => (l.startsWith('Block') ? 'Blocksize: 67108864' : l)), 0, /beyond the 4503599627370495 bytes/],
    ['Length 2^53 + 1 (not a safe number)', swap('Length', 'Length: 9007199254740993'), 0, /whole number of bytes|beyond/],
    ['too many records', swap('Length', `Length: ${2 ** 40}`), 0, /blocks, more than the 33554432 zpump keeps/],
  ])('refuses geometry the engine cannot hold (%s) in inspect and sync alike', async (name, lines, records, reason) => {
    const path = join(tmp.path, `geometry-${name.replace(/\W+/g, '-')}.zsync`);
    await writeFile(path, file(lines, records));
    const inspect = await runCli(['inspect', path]);
    expect(inspect.exitCode).toBe(2);
    expect(inspect.stderr).toMatch(reason);
    for (const engine of ['js', 'zsync', 'auto']) {
      const sync = await runCli(['sync', '--engine', engine, path, join(tmp.path, 'geometry-target.bin')]);
      expect(sync.exitCode).toBe(2);
      expect(sync.stderr).toMatch(reason);
    }
    expect((await readdir(tmp.path)).filter((n) => /^rcksum-|geometry-target/.test(n))).toEqual([]);
  });

  // Spec 0.8 headers zpump cannot honour are refused up front, by inspect and every sync engine.
  const spec08 = ['zsync: 0.8.0', 'Blocksize: 2048', 'Length: 5000', 'Safe: File-Hash,Strong-Hash-Algorithm', 'URL: http://127.0.0.1:9/f', `File-Hash: SHA-256:${'a'.repeat(64)}`];
  it.each([
    ['an unknown strong hash', [...spec08, 'Strong-Hash-Algorithm: SHA-1', 'Hash-Lengths: 1,4,16'], 60, /strong hash "SHA-1"; zpump reads MD4, MD5 and SHA-224/],
    ['a strong length beyond the digest', [...spec08, 'Strong-Hash-Algorithm: MD5', 'Hash-Lengths: 1,4,20'], 72, /3..16 for MD5, got 20/],
    ['a malformed File-Hash', [...spec08.filter((l) => !l.startsWith('File-Hash')), 'File-Hash: SHA-256:abc', 'Hash-Lengths: 1,4,16'], 60, /SHA-256 must be 64 hex digits/],
  ])('refuses %s in inspect and sync alike (exit 2, the reason)', async (name, lines, records, reason) => {
    const path = join(tmp.path, `spec08-${name.replace(/\W+/g, '-')}.zsync`);
    await writeFile(path, file(lines, records));
    const inspect = await runCli(['inspect', path]);
    expect(inspect.exitCode).toBe(2);
    expect(inspect.stderr).toMatch(reason);
    for (const engine of ['js', 'zsync', 'auto']) {
      const sync = await runCli(['sync', '--engine', engine, path, join(tmp.path, 'spec08-target.bin')]);
      expect(sync.exitCode).toBe(2);
      expect(sync.stderr).toMatch(reason);
    }
  });

  it('exits 2 for a control file that does not exist', async () => {
    const run = await runCli(['inspect', join(tmp.path, 'nope.zsync')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/does not exist/);
  });
});

describe('zpump engines', () => {
  it('lists the js engine and the C tools with paths and versions (--json)', async () => {
    const j = JSON.parse((await runCli(['engines', '--json'])).stdout);
    expect(j.engines.map((e: { name: string }) => e.name)).toEqual(['js', 'zsyncmake', 'zsync']);
    expect(j.engines[0].available).toBe(true);
    for (const tool of j.engines.slice(1)) {
      if (tool.available) expect(tool.version).toBe('0.6.2');
      else expect(tool.problem).toBeTruthy();
    }
    // Each says which control files it reads or writes.
    expect(j.engines[0].handles).toMatch(/spec 0.8 control files \(MD4, MD5, SHA-224/);
    const client = j.engines[2];
    if (client.available && client.generation === '0.6.2') {
      expect(client.handles).toMatch(/reads MD4 control files .* gzip-inside too/);
      expect(j.auto.sync).toMatch(/js for MD5\/SHA-224 files/);
    }
  });
});

describe('zpump inspect on announcements', () => {
  it('shows where the data is, the inline signature, and that a subscriber takes it', async () => {
    const made = await runCli(['announce', '--base-url', 'http://data.example.org/', 'data.bin'], { cwd: tmp.path });
    expect(made.exitCode, made.stderr).toBe(0);
    await writeFile(join(tmp.path, 'm.json'), made.stdout);
    const j = JSON.parse((await runCli(['inspect', '--json', 'm.json'], { cwd: tmp.path })).stdout);
    expect(j).toMatchObject({ kind: 'announcement', relPath: 'data.bin', dataUrl: 'http://data.example.org/data.bin', size: 1 << 20, accepted: { ok: true } });
    expect(j.signature).toMatchObject({ form: 'inline', length: 1 << 20, usable: { js: true } });
    const text = await runCli(['inspect', '-'], { cwd: tmp.path, input: made.stdout });
    expect(text.stdout).toMatch(/signature\s+inline/);
    expect(text.stdout).toMatch(/subscribe\s+accepts it/);
  });

  it('says why a subscriber would refuse a message', async () => {
    const made = await runCli(['announce', '--base-url', 'http://h/', 'data.bin'], { cwd: tmp.path });
    const hostile = JSON.stringify({ ...JSON.parse(made.stdout), relPath: '../../etc/passwd' });
    const run = await runCli(['inspect', '-'], { input: hostile });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/subscribe\s+refuses it: .*"\.\."/);
  });
});
