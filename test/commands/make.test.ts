import { chmod, mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseControlFile } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';

let tmp: DirectoryResult;
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'small.bin'), seededBytes(100_000, 1));
  await writeFile(join(tmp.path, 'big.bin'), seededBytes(3 << 20, 2));
});
afterAll(async () => { await tmp.cleanup(); });

const json = (stdout: string): Array<Record<string, unknown>> => stdout.trim().split('\n').map((l) => JSON.parse(l));

describe('zpump make', () => {
  it('skips files below the threshold with a note and exit 0; --force signs them', async () => {
    const skipped = await runCli(['make', 'small.bin'], { cwd: tmp.path });
    expect(skipped.exitCode).toBe(0);
    expect(skipped.stdout).toMatch(/below the 1 MiB threshold/);
    await expect(stat(join(tmp.path, 'small.bin.zsync'))).rejects.toThrow();
    const forced = await runCli(['make', '--force', '--engine', 'js', 'small.bin'], { cwd: tmp.path });
    expect(forced.exitCode).toBe(0);
    expect(parseControlFile(await readFile(join(tmp.path, 'small.bin.zsync'))).length).toBe(100_000);
  });

  it('--json gives one result per file with engine, blockSize, records, signatureBytes, seconds', async () => {
    const run = await runCli(['make', '--json', '--engine', 'js', '-t', '512k', 'small.bin', 'big.bin'], { cwd: tmp.path });
    expect(run.exitCode).toBe(0);
    const [small, big] = json(run.stdout);
    expect(small).toMatchObject({ input: 'small.bin', skipped: true, reason: 'below-threshold', threshold: 512 * 1024 });
    expect(big).toMatchObject({ input: 'big.bin', skipped: false, engine: 'js', length: 3 << 20, output: 'big.bin.zsync' });
    expect(big!.records).toBe(Math.ceil((3 << 20) / (big!.blockSize as number)));
    expect(big!.signatureBytes).toBe((await stat(join(tmp.path, 'big.bin.zsync'))).size);
    expect(typeof big!.seconds).toBe('number');
  });

  it('auto block size keeps the signature within --budget', async () => {
    for (const budget of ['64k', '2k']) {
      const run = await runCli(['make', '--json', '--engine', 'js', '--budget', budget, '-o', `auto-${budget}.zsync`, 'big.bin'], { cwd: tmp.path });
      const [r] = json(run.stdout);
      const limit = budget === '64k' ? 65536 : 2048;
      expect(r!.signatureBytes as number).toBeLessThanOrEqual(limit);
      expect(r!.blockSize as number).toBeGreaterThanOrEqual(4096);
    }
    const [small] = json((await runCli(['make', '--json', '--engine', 'js', '--budget', '2k', '-o', 'a.zsync', 'big.bin'], { cwd: tmp.path })).stdout);
    const [large] = json((await runCli(['make', '--json', '--engine', 'js', '--budget', '64k', '-o', 'b.zsync', 'big.bin'], { cwd: tmp.path })).stdout);
    expect(small!.blockSize as number).toBeGreaterThan(large!.blockSize as number);
  });

  it('writes the URL header given with --url, else the file name', async () => {
    await runCli(['make', '--engine', 'js', '-u', 'https://data.example.org/big.bin', '-o', 'u.zsync', 'big.bin'], { cwd: tmp.path });
    expect(parseControlFile(await readFile(join(tmp.path, 'u.zsync'))).urls).toEqual(['https://data.example.org/big.bin']);
    expect(parseControlFile(await readFile(join(tmp.path, 'big.bin.zsync'))).urls).toEqual(['big.bin']);
  });

  it.each([
    [['make', '-b', '3000', 'big.bin'], /power of two/],
    [['make', '-b', '512', 'big.bin'], /power of two from 1k to 64M/],
    // Issue 8 item 6: sizes the engines cannot hold, or that overflow, are usage errors (exit 2).
    [['make', '-b', '8g', 'big.bin'], /invalid.*usage: --block-size 8g is larger than 64M/],
    [['make', '-b', '1t', 'big.bin'], /usage: --block-size 1t is larger than 64M/],
    [['make', '-b', '2g', 'big.bin'], /usage: --block-size 2g is larger than 64M/],
    [['make', '-b', '128M', 'big.bin'], /larger than 64M/],
    [['make', '-b', '99999999999999999999', 'big.bin'], /expects a size/],
    [['make', '-b', '99999999t', 'big.bin'], /too large/],
    [['make', '-b', '1.5', 'big.bin'], /not a whole number of bytes/],
    [['make', '-b', '-4k', 'big.bin'], /expects a size|unknown option/],
    [['make', '--budget', '1e9', 'big.bin'], /expects a size/],
    [['make', '-b', 'lots', 'big.bin'], /expects a size/],
    [['make', '--engine', 'rust', 'big.bin'], /auto, zsync or js/],
    [['make', '-o', 'x.zsync', 'big.bin', 'small.bin'], /one FILE only/],
    [['make', 'missing.bin'], /does not exist/],
    [['make', '.'], /not a regular file/],
    [['make'], /missing required argument/],
  ])('bad usage or input exits 2 with a clear message: %j', async (args, message) => {
    const run = await runCli(args, { cwd: tmp.path });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('--help says why block sizes stop at 64M', async () => {
    const help = (await runCli(['make', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/1k to 64M \(at most 64M: each block is held in memory whole, and from 64k up the weak sum stops seeing the byte leaving the window/);
  });

  it('is atomic: a failed run leaves the old .zsync and no temporary file', async () => {
    const out = join(tmp.path, 'keep.zsync');
    await writeFile(out, 'old content');
    await writeFile(join(tmp.path, 'unreadable.bin'), seededBytes(2 << 20, 3));
    await chmod(join(tmp.path, 'unreadable.bin'), 0o000);
    // root reads anything, so use a directory in place of the file for a guaranteed failure
    await mkdir(join(tmp.path, 'adir.bin'), { recursive: true });
    const run = await runCli(['make', '--engine', 'js', '-o', 'keep.zsync', 'adir.bin'], { cwd: tmp.path });
    expect(run.exitCode).toBe(2);
    expect(await readFile(out, 'utf8')).toBe('old content');
    expect((await readdir(tmp.path)).filter((n) => n.endsWith('.zpump-tmp'))).toEqual([]);
  });

  describe.skipIf(!requireTool('zsyncmake', 'zsync'))('with the zsync backend', () => {
    it('zsync and js engines write the same bytes through the CLI', async () => {
      const mtime = new Date('2024-05-06T07:08:09Z');
      await utimes(join(tmp.path, 'big.bin'), mtime, mtime);
      const a = await runCli(['make', '--engine', 'zsync', '--json', '-b', '64k', '-o', 'z.zsync', 'big.bin'], { cwd: tmp.path });
      const b = await runCli(['make', '--engine', 'js', '--json', '-b', '64k', '-o', 'j.zsync', 'big.bin'], { cwd: tmp.path });
      expect(json(a.stdout)[0]).toMatchObject({ engine: 'zsync' });
      expect(json(b.stdout)[0]).toMatchObject({ engine: 'js' });
      expect((await readFile(join(tmp.path, 'z.zsync'))).equals(await readFile(join(tmp.path, 'j.zsync')))).toBe(true);
    });

    it('auto falls back to js when zsyncmake fails, and says so; --engine zsync fails with exit 1', async () => {
      const fakeBin = join(tmp.path, 'fake-bin');
      await mkdir(fakeBin, { recursive: true });
      // Claims to be 0.6.2, then writes garbage to its -o file and fails like a crash would.
      await writeFile(join(fakeBin, 'zsyncmake'), '#!/bin/sh\nif [ "$1" = -V ]; then echo "zsync v0.6.2"; exit 0; fi\nwhile [ $# -gt 1 ]; do [ "$1" = -o ] && printf garbage > "$2"; shift; done\necho "zsyncmake: simulated failure" >&2\nexit 2\n');
      await chmod(join(fakeBin, 'zsyncmake'), 0o755);
      const env = { PATH: `${fakeBin}:${process.env.PATH}` };
      const auto = await runCli(['make', '--json', '-o', 'fb.zsync', 'big.bin'], { cwd: tmp.path, env });
      expect(auto.exitCode).toBe(0);
      const [r] = json(auto.stdout);
      expect(r).toMatchObject({ engine: 'js', fallback: { from: 'zsync' } });
      expect(String((r!.fallback as { reason: string }).reason)).toMatch(/simulated failure/);
      parseControlFile(await readFile(join(tmp.path, 'fb.zsync')));
      const forced = await runCli(['make', '--engine', 'zsync', '-o', 'fz.zsync', 'big.bin'], { cwd: tmp.path, env });
      expect(forced.exitCode).toBe(1);
      expect(forced.stderr).toMatch(/zsyncmake failed .*simulated failure/);
      await expect(stat(join(tmp.path, 'fz.zsync'))).rejects.toThrow();
      expect((await readdir(tmp.path)).filter((n) => n.endsWith('.zpump-tmp'))).toEqual([]);
    });
  });

  it('the example Makefile builds .zsync files with a pattern rule and is then up to date', async () => {
    const work = join(tmp.path, 'mk');
    await mkdir(work, { recursive: true });
    await writeFile(join(work, 'a.bin'), seededBytes(200_000, 5));
    await writeFile(join(work, 'b.bin'), seededBytes(300_000, 6));
    const makefile = fileURLToPath(new URL('../../examples/Makefile', import.meta.url));
    const zpump = `${process.execPath} ${fileURLToPath(new URL('../../dist/cli.js', import.meta.url))}`;
    const first = await execa('make', ['-f', makefile, `ZPUMP=${zpump}`], { cwd: work });
    expect(first.stdout).toMatch(/make --force/);
    for (const f of ['a.bin', 'b.bin']) expect(parseControlFile(await readFile(join(work, `${f}.zsync`))).filename).toBe(f);
    const again = await execa('make', ['-f', makefile, `ZPUMP=${zpump}`], { cwd: work });
    expect(again.stdout).toMatch(/Nothing to be done/);
  });
});
