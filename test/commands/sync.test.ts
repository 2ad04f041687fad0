// Both engines on the same cases against a real nginx on 127.0.0.1: each output must equal the
// new file, and the js engine must not fetch more than zsync does (read from nginx's own log).

import { execa } from 'execa';
import { copyFile, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { scattered, seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const hasTools = requireTool('nginx', 'nginx-light') && requireTool('zsync', 'zsync') && requireTool('zsyncmake', 'zsync');

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

interface Case {
  name: string;
  make(old: Uint8Array): { next: Uint8Array; seeds: Uint8Array[]; targetExists: boolean };
}

const cases: Case[] = [
  { name: 'identical', make: (old) => ({ next: old, seeds: [], targetExists: true }) },
  { name: '1% scattered 4 KiB rewrites', make: (old) => ({ next: scattered(old, 0.01, 9), seeds: [], targetExists: true }) },
  { name: '16 bytes inserted near the start', make: (old) => ({ next: concat(old.subarray(0, 5000), seededBytes(16, 3), old.subarray(5000)), seeds: [], targetExists: true }) },
  { name: '1/16 appended', make: (old) => ({ next: concat(old, seededBytes(old.length / 16, 4)), seeds: [], targetExists: true }) },
  { name: 'truncated', make: (old) => ({ next: old.subarray(0, Math.floor(old.length * 0.75) + 123), seeds: [], targetExists: true }) },
  { name: 'entirely different', make: (old) => ({ next: seededBytes(old.length, 77), seeds: [], targetExists: true }) },
  { name: 'no local copy', make: (old) => ({ next: old, seeds: [], targetExists: false }) },
  { name: 'two seeds with half the blocks each', make: (old) => ({ next: old, seeds: [old.subarray(0, old.length / 2), old.subarray(old.length / 2)], targetExists: false }) },
];

describe.skipIf(!hasTools)('zpump sync against nginx: js engine vs zsync', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await execa('mkdir', ['-p', join(tmp.path, 'www'), join(tmp.path, 'work')]);
    nginx = await startNginx({ root: join(tmp.path, 'www') });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  it('finds isolated unchanged blocks that zsync 0.6.2 re-downloads (1 MiB blocks, every other block edited)', async () => {
    const blockSize = 1 << 20;
    const old = seededBytes(16 << 20, 5);
    const next = new Uint8Array(old);
    for (let b = 0; b < 16; b += 2) next[b * blockSize + 1000] = next[b * blockSize + 1000]! ^ 0xff;
    const www = join(tmp.path, 'www');
    const work = join(tmp.path, 'work');
    await writeFile(join(www, 'iso.bin'), next);
    await execa('zsyncmake', ['-b', String(blockSize), '-u', 'iso.bin', '-o', join(www, 'iso.zsync'), join(www, 'iso.bin')]);
    const fetched: Record<string, number> = {};
    for (const engine of ['zsync', 'js']) {
      const target = join(work, `iso-${engine}.bin`);
      await writeFile(target, old);
      await nginx.clearLog();
      const run = await runCli(['sync', '--json', '--engine', engine, `${nginx.url}iso.zsync`, target]);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
      fetched[engine] = (await nginx.readLog()).filter((e) => e.path === '/iso.bin').reduce((n, e) => n + e.bodyBytesSent, 0);
    }
    // zsync needs a block's successor to match too, so it fetches (nearly) everything; js fetches the 8 edited blocks.
    expect(fetched.js!).toBeLessThan(8.5 * blockSize);
    expect(fetched.js!).toBeLessThanOrEqual(0.93 * fetched.zsync!);
  });

  for (const blockSize of [2048, 65536, 1 << 20]) {
    const size = blockSize === 1 << 20 ? 24 << 20 : 4 << 20;
    for (const c of cases) {
      it(`${c.name}, ${blockSize >= 65536 ? `${blockSize >> 10} KiB` : `${blockSize} B`} blocks`, async () => {
        const old = seededBytes(size, 1);
        const { next, seeds, targetExists } = c.make(old);
        const www = join(tmp.path, 'www');
        const work = join(tmp.path, 'work');
        await writeFile(join(www, 'new.bin'), next);
        // Control files by both makers: identical bytes, so each engine gets the other's.
        await execa('zsyncmake', ['-b', String(blockSize), '-u', 'new.bin', '-o', join(www, 'c.zsync'), join(www, 'new.bin')]);
        const made = await runCli(['make', '--engine', 'js', '--force', '-b', String(blockSize), '-u', 'new.bin', '-o', join(www, 'js.zsync'), join(www, 'new.bin')]);
        expect(made.exitCode).toBe(0);
        const fetched: Record<string, number> = {};
        for (const [engine, control] of [['zsync', 'js.zsync'], ['js', 'c.zsync']] as const) {
          const target = join(work, `${engine}.bin`);
          await rm(target, { force: true });
          if (targetExists) await writeFile(target, old);
          const seedArgs: string[] = [];
          for (const [i, s] of seeds.entries()) {
            await writeFile(join(work, `seed${i}`), s);
            seedArgs.push('-i', join(work, `seed${i}`));
          }
          await nginx.clearLog();
          const run = await runCli(['sync', '--json', '--engine', engine, ...seedArgs, `${nginx.url}${control}`, target]);
          expect(run.exitCode, run.stderr).toBe(0);
          const result = JSON.parse(run.stdout);
          expect(result.engine).toBe(engine);
          expect(result.verified).toBe(true);
          expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
          const log = await nginx.readLog();
          fetched[engine] = log.filter((e) => e.path === '/new.bin').reduce((n, e) => n + e.bodyBytesSent, 0);
        }
        expect(fetched.js!).toBeLessThanOrEqual(fetched.zsync! * 1.05 + 1024);
        expect((await readdir(work)).filter((n) => n.includes('zpump-tmp') || n.endsWith('.part'))).toEqual([]);
      });
    }
  }
});
