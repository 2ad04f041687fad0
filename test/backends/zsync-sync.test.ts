// The real zsync 0.6.2 client (directly, and as zpump's zsync engine) against nginx on control
// files beyond zsyncmake 0.6.2's own: spec 0.8 files made by zpump, 0.6.2's leniencies, several
// URLs, gzip-inside files; and auto's choice when the installed client cannot read a file.

import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { controlFile, controlFileWith } from '../helpers/control-files.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { requireTool } from '../helpers/require-tool.js';

const next = seededBytes((1 << 20) + 777, 41);
const old = new Uint8Array(next);
for (let i = 0; i < old.length; i += 100_000) old[i] = old[i]! ^ 0xa5;
const hasTools = requireTool('nginx', 'nginx-light') && requireTool('zsync', 'zsync') && requireTool('zsyncmake', 'zsync');

describe.skipIf(!hasTools)('zsync 0.6.2 client on spec 0.8 files, leniencies, several URLs, gzip-inside', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  let n = 0;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await writeFile(join(tmp.path, 'data.bin'), next);
    nginx = await startNginx({ root: tmp.path });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });
  const data = () => join(tmp.path, 'data.bin');
  const url = () => `${nginx.url}data.bin`;

  async function sync(control: Uint8Array, engine: string) {
    const name = `z${n++}`;
    const path = join(tmp.path, `${name}.zsync`);
    const target = join(tmp.path, `${name}.out`);
    await writeFile(path, control);
    await writeFile(target, old);
    const run = await runCli(['sync', '--json', '--engine', engine, path, target]);
    const json = run.exitCode === 0 ? JSON.parse(run.stdout) : {};
    return { run, json, bytes: await readFile(target), name };
  }

  it('the MD4 spec 0.8 file zpump makes is read by the real zsync 0.6.2, which rebuilds the file', async () => {
    const made = await runCli(['make', '--force', '--format', '0.8', '-b', '4k', '-o', join(tmp.path, 'md4-08.zsync'), data()]);
    expect(made.exitCode, made.stderr).toBe(0);
    const out = join(tmp.path, 'md4-08.out');
    await writeFile(join(tmp.path, 'md4-08.seed'), old);
    // Run as an operator would: the .zsync fetched from the server, the old copy as seed.
    const run = await execa('zsync', ['-i', 'md4-08.seed', '-o', out, `${nginx.url}md4-08.zsync`], { cwd: tmp.path, reject: false, all: true });
    expect(run.exitCode, run.all).toBe(0);
    expect((await readFile(out)).equals(Buffer.from(next))).toBe(true);
    expect(run.all).toMatch(/used \d+ local, fetched \d+/);
  });

  it('zpump\'s zsync engine rebuilds from an MD4 spec 0.8 file and checks its SHA-256 itself', async () => {
    const { run, json, bytes } = await sync(await controlFile({ input: data(), urls: [url()], strongHash: 'MD4' }), 'zsync');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(json).toMatchObject({ engine: 'zsync', verified: true });
    expect(bytes.equals(Buffer.from(next))).toBe(true);
    const wrong = `File-Hash: SHA-256:${createHash('sha256').update('other').digest('hex')}`;
    const bad = await sync(await controlFile({ input: data(), urls: [url()], strongHash: 'MD4', edits: [{ key: 'File-Hash', line: wrong }] }), 'zsync');
    expect(bad.run.exitCode).toBe(1);
    expect(bad.run.stderr).toMatch(/the File-Hash says/);
    expect(bad.bytes.equals(Buffer.from(old))).toBe(true);
  });

  it.each([
    ['bytes after the records', { tail: new Uint8Array([0x0a, 0x41, 0x42]) }],
    ['an MTime that is not a date', { edits: [{ key: 'MTime', line: 'MTime: yesterday' }] }],
  ])('zpump\'s zsync engine reads a file with %s', async (_name, change) => {
    const { run, json, bytes } = await sync(await controlFile({ input: data(), urls: [url()], ...change }), 'zsync');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(json.engine).toBe('zsync');
    expect(bytes.equals(Buffer.from(next))).toBe(true);
  });

  it('1-byte weak sums: zsync 0.6.2 still completes (it matches nothing and fetches every block)', async () => {
    const { run, json, bytes } = await sync(await controlFileWith(data(), [url()], 4096, { seqMatches: 1, rsumBytes: 1, checksumBytes: 16 }), 'zsync');
    expect(run.exitCode, run.stderr).toBe(0);
    expect(json.engine).toBe('zsync');
    expect(bytes.equals(Buffer.from(next))).toBe(true);
  });

  it.each(['MD5', 'SHA-224'] as const)('a %s file: --engine zsync refuses with the reason (exit 2), auto uses the js engine', async (strongHash) => {
    const control = await controlFile({ input: data(), urls: [url()], strongHash });
    const refused = await sync(control, 'zsync');
    expect(refused.run.exitCode).toBe(2);
    expect(refused.run.stderr).toMatch(new RegExp(`zsync 0.6.2 reads MD4 control files only, and this one's blocks are ${strongHash}`));
    expect(refused.bytes.equals(Buffer.from(old))).toBe(true);
    const auto = await sync(control, 'auto');
    expect(auto.run.exitCode, auto.run.stderr).toBe(0);
    expect(auto.json.engine).toBe('js');
    expect(auto.json.fallback).toBeUndefined();
    expect(auto.bytes.equals(Buffer.from(next))).toBe(true);
  });

  it('several URLs: zsync moves on from a 404 and from a refused connection, and zpump reports which served', async () => {
    const refused = `http://127.0.0.1:${await freePort()}/data.bin`;
    for (const dead of [`${nginx.url}gone/data.bin`, refused]) {
      const { run, json, bytes } = await sync(await controlFile({ input: data(), urls: [dead, url()] }), 'zsync');
      expect(run.exitCode, run.stderr).toBe(0);
      expect(json.engine).toBe('zsync');
      expect(bytes.equals(Buffer.from(next))).toBe(true);
      expect(json.servedBy).toBe(url());
      expect(json.dataUrl).toBe(url());
    }
  });

  it('a gzip-inside file goes to zsync (auto and --engine zsync); the js engine says why it cannot', async () => {
    const gz = join(tmp.path, 'gz');
    await execa('mkdir', ['-p', gz]);
    const plain = seededBytes(300_000, 12);
    await writeFile(join(gz, 'g.txt'), plain);
    // zsyncmake -z compresses g.txt to g.txt.gz and describes it gzip-inside (Z-URL, Z-Map2).
    await execa('zsyncmake', ['-z', '-u', 'g.txt.gz', 'g.txt'], { cwd: gz });
    const inspect = JSON.parse((await runCli(['inspect', '--json', join(gz, 'g.txt.zsync')])).stdout);
    expect(inspect).toMatchObject({ gzipInside: true, usable: { js: false } });
    for (const [engine, where] of [['auto', `${nginx.url}gz/g.txt.zsync`], ['zsync', join(gz, 'g.txt.zsync')]] as const) {
      const target = join(tmp.path, `g-${engine}.txt`);
      const args = ['sync', '--json', '--engine', engine, ...(engine === 'zsync' ? ['--url', `${nginx.url}gz/g.txt.gz`] : []), where, target];
      const run = await runCli(args);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ engine: 'zsync', verified: true });
      expect((await readFile(target)).equals(Buffer.from(plain))).toBe(true);
    }
    const js = await runCli(['sync', '--engine', 'js', `${nginx.url}gz/g.txt.zsync`, join(tmp.path, 'g-js.txt')]);
    expect(js.exitCode).toBe(2);
    expect(js.stderr).toMatch(/gzip-inside data \(Z-Map2\), which only the zsync 0.6.x client handles/);
    expect((await readdir(tmp.path)).filter((f) => f.startsWith('g-js'))).toEqual([]);
  });
});
