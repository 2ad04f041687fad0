// A sync that runs out of space, with each engine: exit 1 with "no space left", the old target
// intact, and nothing left behind that would keep the disk full (zsync's rcksum-* and .part
// files used to stay, and then the js fallback failed too). A real size-limited filesystem: a
// 16 MiB tmpfs, holding a 10 MiB target whose 10 MiB replacement cannot fit beside it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const MiB = 1 << 20;
const NEW = seededBytes(10 * MiB, 31);
const OLD = seededBytes(10 * MiB, 32);
const hasNginx = requireTool('nginx', 'nginx-light');
const hasZsync = requireTool('zsync', 'zsync');

/** Mount a 16 MiB tmpfs; the reason it cannot be done otherwise. */
function mountSmallDisk(): { path: string } | { reason: string } {
  const path = mkdtempSync(join(tmpdir(), 'zpump-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0755', 'tmpfs', path], { stdio: 'pipe' });
    return { path };
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    const why = `cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): ${String((error as { stderr?: unknown }).stderr ?? error).trim()}`;
    if (process.env.CI === 'true') throw new Error(`${why}. CI=true: the disk-full tests must run, not be skipped.`);
    console.warn(`[zpump tests] skipping the disk-full tests: ${why}`);
    return { reason: why };
  }
}

const disk = hasNginx ? mountSmallDisk() : { reason: 'no nginx' };
const full = 'path' in disk ? disk.path : '';

describe.skipIf(!('path' in disk))('sync onto a disk without room for the new version', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;

  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    const www = join(tmp.path, 'www');
    await mkdir(www);
    await writeFile(join(www, 'new.bin'), NEW);
    const made = await runCli(['make', '--engine', 'js', '-b', '16k', '-u', 'new.bin', join(www, 'new.bin')]);
    expect(made.exitCode, made.stderr).toBe(0);
    nginx = await startNginx({ root: www });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
    try {
      execFileSync('umount', [full]);
      rmSync(full, { recursive: true, force: true });
    } catch {
      // left mounted: visible in `mount`, harmless
    }
  });

  const cases: Array<{ engine: string; needsZsync: boolean }> = [
    { engine: 'js', needsZsync: false },
    { engine: 'zsync', needsZsync: true },
    { engine: 'auto', needsZsync: false },
  ];
  for (const { engine, needsZsync } of cases) {
    it.skipIf(needsZsync && !hasZsync)(`--engine ${engine}: exit 1, "no space left", old target intact, no temporaries`, async () => {
      for (const name of await readdir(full)) await rm(join(full, name), { recursive: true, force: true });
      const target = join(full, 't.bin');
      await writeFile(target, OLD);
      const run = await runCli(['sync', '--engine', engine, `${nginx.url}new.bin.zsync`, target]);
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/no space left/i);
      expect(Buffer.from(await readFile(target)).equals(Buffer.from(OLD))).toBe(true);
      expect(await readdir(full)).toEqual(['t.bin']);
    });
  }
});
