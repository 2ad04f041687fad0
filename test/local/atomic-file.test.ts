// Temporaries name their owner: a later or concurrent run removes only those whose owner is gone,
// results get the mode a plain write would give (or the replaced file's), and a SIGTERM takes the
// temporaries with it.

import { execa } from 'execa';
import { closeSync } from 'node:fs';
import { chmod, link, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, createTempFile, removeStaleTemps } from '../../src/local/atomic-file.js';
import { HOST_LABEL, openOwnTemp, tempOwnerOf } from '../../src/local/temp-owner.js';

let tmp: DirectoryResult;
beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
});
afterEach(async () => {
  await tmp.cleanup();
});

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const run = execa('true');
  await run;
  return run.pid!;
}

const DAY = 24 * 3600;

describe('removeStaleTemps', () => {
  it('removes the temporaries of dead owners and old foreign ones, and keeps those of live runs', async () => {
    const target = join(tmp.path, 't.bin');
    const sleeper = execa('sleep', ['60']);
    try {
      const dead = await deadPid();
      const live = sleeper.pid!;
      const names = {
        liveOther: `.t.bin.${HOST_LABEL}.${live}.0000000a.zpump-tmp`,
        deadFile: `.t.bin.${HOST_LABEL}.${dead}.0000000b.zpump-tmp`,
        deadFolder: `.t.bin.${HOST_LABEL}.${dead}.0000000c.zpump-tmp`,
        foreignFresh: '.t.bin.elsewhere.4242.0000000d.zpump-tmp',
        foreignOld: '.t.bin.elsewhere.4243.0000000e.zpump-tmp',
        legacyOld: '.t.bin.0000000f.zpump-tmp.part',
        otherTarget: `.t.bin.x.${HOST_LABEL}.${dead}.00000010.zpump-tmp`,
        lock: '.t.bin.zpump-lock',
      };
      for (const [key, name] of Object.entries(names)) {
        if (key === 'deadFolder') {
          await mkdir(join(tmp.path, name));
          await writeFile(join(tmp.path, name, 'rcksum-AbCdEf'), 'x');
        } else await writeFile(join(tmp.path, name), 'x');
      }
      const old = Date.now() / 1000 - DAY - 3600;
      for (const name of [names.foreignOld, names.legacyOld]) await utimes(join(tmp.path, name), old, old);
      // This process's own temporary (a second sync in the same subscriber) is live too.
      const mine = await createTempFile(target);
      try {
        expect(await removeStaleTemps(target)).toBe(4);
        const left = await readdir(tmp.path);
        expect(left.sort()).toEqual([names.liveOther, names.foreignFresh, names.otherTarget, names.lock, mine.path.split('/').pop()!].sort());
      } finally {
        await mine.discard();
      }
    } finally {
      sleeper.kill();
      await sleeper.catch(() => undefined);
    }
  });

  it('recognises only its own target\'s temporaries', () => {
    expect(tempOwnerOf(`.a.bin.${HOST_LABEL}.12.0123abcd.zpump-tmp`, 'd/a.bin')).toEqual({ host: HOST_LABEL, pid: 12 });
    expect(tempOwnerOf(`.a.bin.${HOST_LABEL}.12.0123abcd.zpump-tmp`, 'd/a')).toBeNull();
    expect(tempOwnerOf('.a.bin.zpump-lock', 'a.bin')).toBeNull();
    expect(tempOwnerOf('a.bin', 'a.bin')).toBeNull();
  });

  it('keeps temporary names within a directory entry for very long target names', async () => {
    const target = join(tmp.path, `${'é'.repeat(120)}.bin`); // 244 bytes
    const temp = await createTempFile(target);
    expect(Buffer.byteLength(temp.path.split('/').pop()!)).toBeLessThanOrEqual(255);
    await temp.commit();
    expect(await readdir(tmp.path)).toEqual([`${'é'.repeat(120)}.bin`]);
  });
});

describe('the mode of a result', () => {
  it('is what a plain write gives for a new file, and the old file\'s when one is replaced', async () => {
    const fresh = join(tmp.path, 'new.bin');
    const a = await createTempFile(fresh);
    await a.handle.writeFile('new');
    await a.commit();
    expect((await stat(fresh)).mode & 0o777).toBe(0o666 & ~process.umask());

    const kept = join(tmp.path, 'kept.bin');
    await writeFile(kept, 'old');
    await chmod(kept, 0o640);
    const b = await createTempFile(kept);
    await b.handle.writeFile('new');
    await b.commit();
    expect((await stat(kept)).mode & 0o777).toBe(0o640);
  });
});

describe('a SIGTERM while temporaries exist', () => {
  it('removes them and ends the process as the signal would', async () => {
    const module = fileURLToPath(new URL('../../dist/local/atomic-file.js', import.meta.url));
    const script = `
      const { createTempFile, createTempDir } = await import(${JSON.stringify(module)});
      await createTempFile(${JSON.stringify(join(tmp.path, 'a.bin'))});
      const d = await createTempDir(${JSON.stringify(join(tmp.path, 'b.bin'))});
      (await import('node:fs')).writeFileSync(d.path + '/rcksum-XyZ123', 'x');
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    const child = execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, buffer: false });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      void child.then((r) => reject(new Error(`exited early: ${String(r.stderr)}`)));
    });
    expect((await readdir(tmp.path)).length).toBe(2);
    child.kill('SIGTERM');
    const run = await child;
    expect(run.signal).toBe('SIGTERM');
    expect(await readdir(tmp.path)).toEqual([]);
  });
});

describe('a SIGTERM in a command that handles signals itself', () => {
  it('removes the temporaries and leaves the shutdown to the command (its once listener included)', async () => {
    const module = fileURLToPath(new URL('../../dist/local/atomic-file.js', import.meta.url));
    const script = `
      process.once('SIGTERM', () => { console.log('stopping'); setTimeout(() => process.exit(7), 200); });
      const { createTempFile } = await import(${JSON.stringify(module)});
      await createTempFile(${JSON.stringify(join(tmp.path, 'a.bin'))});
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    const child = execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, buffer: false });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('ready')) resolve(); });
      void child.then((r) => reject(new Error(`exited early: ${String(r.stderr)}`)));
    });
    child.kill('SIGTERM');
    const run = await child;
    expect(run.exitCode).toBe(7);
    expect(out).toContain('stopping');
    expect(await readdir(tmp.path)).toEqual([]);
  });
});

describe('createTempDir', () => {
  it('makes a private folder that remove() takes away with its contents', async () => {
    const d = await createTempDir(join(tmp.path, 'c.bin'));
    expect((await stat(d.path)).mode & 0o777).toBe(0o700);
    await writeFile(join(d.path, 'out.part'), 'x');
    await d.remove();
    await d.remove();
    expect(await readdir(tmp.path)).toEqual([]);
  });
});

describe('openOwnTemp: a worker thread opening the temporary by its name', () => {
  it('opens our temporary, and refuses a symlink or a second name put in its place', async () => {
    const temp = await createTempFile(join(tmp.path, 'd.bin'));
    closeSync(openOwnTemp(temp.path));
    const victim = join(tmp.path, 'victim.bin');
    await writeFile(victim, 'keep me');
    await rm(temp.path);
    await symlink(victim, temp.path);
    expect(() => openOwnTemp(temp.path)).toThrow(/ELOOP|symbolic link/);
    await rm(temp.path);
    await link(victim, temp.path); // a hard link renamed over the temporary: the same file as the victim
    expect(() => openOwnTemp(temp.path)).toThrow(/no longer the temporary zpump made/);
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    await temp.discard();
  });
});
