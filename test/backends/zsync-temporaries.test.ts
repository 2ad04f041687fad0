// Whatever ends a sync, no temporary outlives it for long: kill -9 of `sync --engine zsync` or of
// `subscribe` mid-transfer leaves one owned temp folder (zsync's rcksum-*/.part inside it), which
// the next run removes; two syncs into one target at once both succeed (neither removes the
// other's live temporary); and results get a normal file mode from either engine.

import { chmod, mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { startCli } from '../helpers/pump.js';
import { requireTool } from '../helpers/require-tool.js';

const MiB = 1 << 20;
const NEW = seededBytes(8 * MiB, 51);
const OLD = seededBytes(8 * MiB, 52);
const SMALL = seededBytes(256 << 10, 53);
const hasNginx = requireTool('nginx', 'nginx-light');
const hasZsync = requireTool('zsync', 'zsync');

const isTemporary = (name: string): boolean => /zpump-tmp|rcksum-|\.part$|\.zs-old$/.test(name);

/** Wait until `folder` holds a temp folder of zpump with zsync's working file in it. */
async function zsyncWorking(folder: string, what: () => string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const name of await readdir(folder)) {
      if (!name.endsWith('.zpump-tmp')) continue;
      const inside = await readdir(join(folder, name)).catch(() => [] as string[]);
      if (inside.some((n) => n.startsWith('rcksum-') || n.endsWith('.part'))) return name;
    }
    if (Date.now() > deadline) throw new Error(`zsync never started writing in ${folder}:\n${what()}`);
    await sleep(50);
  }
}

/** Processes whose command line mentions `text` (a zsync left running in a removed folder). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}

describe.skipIf(!hasNginx || !hasZsync)('temporaries of the zsync engine and of concurrent runs', () => {
  let tmp: DirectoryResult;
  let www: string;
  let slow: NginxServer;
  let fast: NginxServer;
  let work: string;

  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    www = join(tmp.path, 'www');
    await mkdir(www);
    await writeFile(join(www, 'new.bin'), NEW);
    await writeFile(join(www, 'small.bin'), SMALL);
    for (const name of ['new.bin', 'small.bin']) {
      const made = await runCli(['make', '--engine', 'js', '--force', '-b', '16k', '-u', name, join(www, name)]);
      expect(made.exitCode, made.stderr).toBe(0);
    }
    // Slow enough to interrupt mid-transfer (per connection; zsync uses one).
    slow = await startNginx({ root: www, limitRate: 1 * MiB });
    fast = await startNginx({ root: www });
  });
  afterAll(async () => {
    await slow?.stop();
    await fast?.stop();
    await tmp?.cleanup();
  });
  beforeEach(async () => {
    work = join(tmp.path, `w-${Math.random().toString(36).slice(2)}`);
    await mkdir(work);
  });

  it('kill -9 of sync --engine zsync mid-transfer: the next run removes what it left', async () => {
    const target = join(work, 't.bin');
    await writeFile(target, OLD);
    const first = startCli(['sync', '--engine', 'zsync', `${slow.url}new.bin.zsync`, target]);
    await zsyncWorking(work, first.stderr);
    await first.kill('SIGKILL');
    // What a killed run leaves is confined to its one folder.
    expect((await readdir(work)).filter(isTemporary)).toHaveLength(1);

    const again = await runCli(['sync', '--engine', 'zsync', `${fast.url}new.bin.zsync`, target]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
    expect(await readdir(work)).toEqual(['t.bin']);
  });

  it('kill -9 of subscribe during a zsync transfer: the restarted subscriber leaves nothing behind', async () => {
    const spool = join(tmp.path, `spool-${Math.random().toString(36).slice(2)}`);
    const posted = await runCli(['announce', '--base-url', slow.url, '--root', www, '--post', `spool:${spool}`, join(www, 'new.bin')]);
    expect(posted.exitCode, posted.stderr).toBe(0);
    await writeFile(join(work, 'new.bin'), OLD);
    await utimes(join(work, 'new.bin'), 946684800, 946684800); // older than the announced version
    const first = startCli(['subscribe', `spool:${spool}`, '--dir', work, '--engine', 'zsync']);
    await zsyncWorking(work, first.stderr);
    await first.kill('SIGKILL');
    expect((await readdir(work)).filter(isTemporary)).toHaveLength(1);

    const again = await runCli(['subscribe', `spool:${spool}`, '--dir', work, '--once', '--engine', 'zsync']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(Buffer.from(await readFile(join(work, 'new.bin'))).equals(Buffer.from(NEW))).toBe(true);
    expect((await readdir(work, { recursive: true })).filter((n) => isTemporary(n) || n.endsWith('.zpump-lock'))).toEqual([]);
  });

  it('SIGTERM of sync --engine zsync mid-transfer: zsync is stopped and its folder removed at once', async () => {
    const target = join(work, 't.bin');
    await writeFile(target, OLD);
    const first = startCli(['sync', '--engine', 'zsync', `${slow.url}new.bin.zsync`, target]);
    const folder = await zsyncWorking(work, first.stderr);
    await first.kill('SIGTERM');
    expect(await readdir(work)).toEqual(['t.bin']);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(OLD))).toBe(true);
    expect(await processesMentioning(folder)).toEqual([]);
  });

  it('SIGTERM of subscribe during a zsync transfer: zsync is stopped and nothing is left', async () => {
    const spool = join(tmp.path, `spool-${Math.random().toString(36).slice(2)}`);
    const posted = await runCli(['announce', '--base-url', slow.url, '--root', www, '--post', `spool:${spool}`, join(www, 'new.bin')]);
    expect(posted.exitCode, posted.stderr).toBe(0);
    await writeFile(join(work, 'new.bin'), OLD);
    await utimes(join(work, 'new.bin'), 946684800, 946684800);
    const first = startCli(['subscribe', `spool:${spool}`, '--dir', work, '--engine', 'zsync']);
    const folder = await zsyncWorking(work, first.stderr);
    await first.kill('SIGTERM');
    expect((await readdir(work, { recursive: true })).filter((n) => isTemporary(n) || n.endsWith('.zpump-lock'))).toEqual([]);
    expect(Buffer.from(await readFile(join(work, 'new.bin'))).equals(Buffer.from(OLD))).toBe(true);
    expect(await processesMentioning(folder)).toEqual([]);
  });

  it('two syncs into one target at once both succeed', async () => {
    const target = join(work, 't.bin');
    await writeFile(target, OLD);
    const first = startCli(['sync', '--engine', 'js', `${slow.url}new.bin.zsync`, target]);
    // The second starts while the first is writing its temporary.
    const deadline = Date.now() + 30_000;
    while (!(await readdir(work)).some((n) => n.endsWith('.zpump-tmp'))) {
      if (Date.now() > deadline) throw new Error(`the first sync never started:\n${first.stderr()}`);
      await sleep(20);
    }
    const second = await runCli(['sync', '--engine', 'js', `${slow.url}new.bin.zsync`, target]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(await first.exited(), first.stderr()).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
    expect(await readdir(work)).toEqual(['t.bin']);
  });

  for (const engine of ['js', 'zsync']) {
    it(`--engine ${engine}: a new file gets 0666 less the umask, a replaced one keeps its mode`, async () => {
      const fresh = join(work, 'fresh.bin');
      const made = await runCli(['sync', '--engine', engine, `${fast.url}small.bin.zsync`, fresh]);
      expect(made.exitCode, made.stderr).toBe(0);
      expect((await stat(fresh)).mode & 0o777).toBe(0o666 & ~process.umask());

      const kept = join(work, 'kept.bin');
      await writeFile(kept, OLD.subarray(0, 100_000));
      await chmod(kept, 0o640);
      const replaced = await runCli(['sync', '--engine', engine, `${fast.url}small.bin.zsync`, kept]);
      expect(replaced.exitCode, replaced.stderr).toBe(0);
      expect(Buffer.from(await readFile(kept)).equals(Buffer.from(SMALL))).toBe(true);
      expect((await stat(kept)).mode & 0o777).toBe(0o640);
    });
  }

  it('a whole download (an announcement, nothing local) gets 0666 less the umask too', async () => {
    const posted = await runCli(['announce', '--base-url', fast.url, '--root', www, '--post', '-', join(www, 'small.bin')]);
    expect(posted.exitCode, posted.stderr).toBe(0);
    const message = join(work, 'small.json');
    await writeFile(message, posted.stdout);
    const fresh = join(work, 'whole.bin');
    const run = await runCli(['sync', message, fresh]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await stat(fresh)).mode & 0o777).toBe(0o666 & ~process.umask());
  });
});
