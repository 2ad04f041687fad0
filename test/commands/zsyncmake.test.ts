// `zpump zsyncmake` must write what the real zsyncmake writes for the same flags.

import { execa } from 'execa';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';

let tmp: DirectoryResult;
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'data.bin'), seededBytes(300_001, 8));
  const t = new Date('2021-03-04T05:06:07Z');
  await utimes(join(tmp.path, 'data.bin'), t, t);
});
afterAll(async () => { await tmp.cleanup(); });

describe.skipIf(!requireTool('zsyncmake', 'zsync'))('zpump zsyncmake (drop-in)', () => {
  it.each([
    [['-b', '1024', '-u', 'http://example.com/data.bin', '-o', 'OUT', 'data.bin']],
    [['-b4096', '-f', 'renamed.bin', '-u', 'a', '-u', 'b', '-U', 'c', '-o', 'OUT', 'data.bin']],
    [['-o', 'OUT', 'data.bin']], // no -u: relative URL as typed, default block size
    [['-e', '-C', '-v', '-b', '65536', '-o', 'OUT', 'data.bin']],
  ])('same bytes as zsyncmake for %j', async (args) => {
    const real = args.map((a) => (a === 'OUT' ? 'real.zsync' : a));
    const ours = args.map((a) => (a === 'OUT' ? 'ours.zsync' : a));
    await execa('zsyncmake', real, { cwd: tmp.path });
    const run = await runCli(['zsyncmake', ...ours], { cwd: tmp.path });
    expect(run.exitCode).toBe(0);
    expect((await readFile(join(tmp.path, 'ours.zsync'))).equals(await readFile(join(tmp.path, 'real.zsync')))).toBe(true);
  });

  it('names the output after Filename when -o is absent', async () => {
    await execa('zsyncmake', ['-f', 'named.bin', '-u', 'x', 'data.bin'], { cwd: tmp.path });
    const real = await readFile(join(tmp.path, 'named.bin.zsync'));
    const run = await runCli(['zsyncmake', '-f', 'named.bin', '-u', 'x', 'data.bin'], { cwd: tmp.path });
    expect(run.exitCode).toBe(0);
    expect((await readFile(join(tmp.path, 'named.bin.zsync'))).equals(real)).toBe(true);
  });

  it('reads stdin like zsyncmake (no Filename, no MTime) and writes to stdout', async () => {
    const real = await execa('zsyncmake', ['-u', 'http://h/x'], { cwd: tmp.path, inputFile: join(tmp.path, 'data.bin'), encoding: 'buffer' });
    const ours = await execa(process.execPath, [join(import.meta.dirname, '../../dist/cli.js'), 'zsyncmake', '-u', 'http://h/x'], { cwd: tmp.path, inputFile: join(tmp.path, 'data.bin'), encoding: 'buffer' });
    expect(Buffer.from(ours.stdout).equals(Buffer.from(real.stdout))).toBe(true);
  });

  it('refuses a block size that is not a power of two, like zsyncmake (exit 2)', async () => {
    const real = await execa('zsyncmake', ['-b', '3000', 'data.bin'], { cwd: tmp.path, reject: false });
    const ours = await runCli(['zsyncmake', '-b', '3000', 'data.bin'], { cwd: tmp.path });
    expect(real.exitCode).toBe(2);
    expect(ours.exitCode).toBe(2);
    expect(ours.stderr).toMatch(/power of 2/);
  });

  it('refuses blocks over 64 MiB as a usage error where zsyncmake would wrap them (exit 2)', async () => {
    for (const b of ['134217728', '2147483648', '8589934592']) {
      const ours = await runCli(['zsyncmake', '-b', b, '-o', 'never.zsync', 'data.bin'], { cwd: tmp.path });
      expect(ours.exitCode).toBe(2);
      expect(ours.stderr).toMatch(/usage: zsyncmake: blocksize \d+ is larger than 64 MiB/);
    }
  });

  it('leaves gzip input to the C tools with a clear message unless -Z', async () => {
    const gz = (await import('node:zlib')).gzipSync(seededBytes(10_000, 1));
    await writeFile(join(tmp.path, 'x.gz'), gz);
    const refused = await runCli(['zsyncmake', '-o', 'gz.zsync', 'x.gz'], { cwd: tmp.path });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/gzip data.*-Z/);
    const opaque = await runCli(['zsyncmake', '-Z', '-u', 'x.gz', '-o', 'gz.zsync', 'x.gz'], { cwd: tmp.path });
    await execa('zsyncmake', ['-Z', '-u', 'x.gz', '-o', 'gzreal.zsync', 'x.gz'], { cwd: tmp.path });
    expect(opaque.exitCode).toBe(0);
    expect((await readFile(join(tmp.path, 'gz.zsync'))).equals(await readFile(join(tmp.path, 'gzreal.zsync')))).toBe(true);
  });
});
