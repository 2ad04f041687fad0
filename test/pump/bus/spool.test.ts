// A spool is a folder anyone with write access can drop entries into: entries that are not
// regular files or are too large are moved to rejected/ with the reason, unread, and the good
// messages beside them are still applied; --once always ends.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSpoolSource } from '../../../src/pump/bus/spool.js';
import { runCli } from '../../helpers/cli.js';
import { startCli } from '../../helpers/pump.js';

const run = promisify(execFile);

let tmp: DirectoryResult;
let spool: string;
beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  spool = join(tmp.path, 'spool');
  await mkdir(spool);
});
afterEach(async () => {
  await tmp.cleanup();
});

/** Sparse: 200 MB long, no disk used; a reader that reads it whole before checking pays 200 MB. */
async function bigFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  await handle.truncate(size);
  await handle.close();
}

async function hostileEntries(): Promise<string[]> {
  await run('mkfifo', [join(spool, '1-fifo.json')]);
  await mkdir(join(spool, '2-dir.json'));
  await writeFile(join(spool, '2-dir.json', 'inside'), 'x');
  await symlink('/dev/zero', join(spool, '3-zero.json'));
  await bigFile(join(spool, '4-big.json'), 200e6);
  await writeFile(join(tmp.path, 'target.json'), '{}');
  await symlink(join(tmp.path, 'target.json'), join(spool, '5-link.json'));
  return ['1-fifo.json', '2-dir.json', '3-zero.json', '4-big.json', '5-link.json'];
}

describe('spool source', () => {
  it('refuses FIFOs, directories, symlinks and oversized entries unread, and delivers the rest', async () => {
    const hostile = await hostileEntries();
    await writeFile(join(spool, '6-good.json'), '{"ok":true}');
    const delivered: string[] = [];
    const refused = new Map<string, string>();
    await createSpoolSource(spool).consume(
      async (d) => {
        delivered.push(`${d.id} ${Buffer.from(d.body).toString()}`);
        await d.ack();
      },
      { once: true, prefetch: 2, signal: new AbortController().signal, log: () => undefined, messageLimit: 1 << 20, refused: (id, why) => refused.set(id, why) },
    );
    expect(delivered).toEqual(['6-good.json {"ok":true}']);
    expect([...refused.keys()].sort()).toEqual(hostile);
    expect(refused.get('1-fifo.json')).toMatch(/not a FIFO/);
    expect(refused.get('2-dir.json')).toMatch(/not a directory/);
    expect(refused.get('3-zero.json')).toMatch(/symbolic link/);
    expect(refused.get('4-big.json')).toMatch(/200000000 bytes, over the 1048576-byte message limit/);
    expect(refused.get('5-link.json')).toMatch(/symbolic link/);
    const aside = await readdir(join(spool, 'rejected'));
    for (const name of hostile) {
      expect(aside).toContain(name);
      expect(await readFile(join(spool, 'rejected', `${name}.reason.txt`), 'utf8')).toBe(`${refused.get(name)}\n`);
    }
    expect((await readdir(spool)).sort()).toEqual(['rejected']);
  });

  it('ends --once even when a refused entry cannot be moved aside (no busy loop)', async () => {
    await mkdir(join(spool, 'x.json'));
    await writeFile(join(spool, 'rejected'), 'a file where the rejected/ folder should be');
    const logs: string[] = [];
    let refusals = 0;
    await createSpoolSource(spool).consume(async () => undefined, { once: true, prefetch: 1, signal: new AbortController().signal, log: (l) => logs.push(l), refused: () => refusals++ });
    expect(refusals).toBe(1);
    expect(logs.join('\n')).toMatch(/cannot move x\.json .*skipped from now on/);
    expect(existsSync(join(spool, 'x.json'))).toBe(true);
  });

  it('never follows a rejected/ that is a symlink', async () => {
    const elsewhere = join(tmp.path, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(spool, 'rejected'));
    await mkdir(join(spool, 'x.json'));
    const logs: string[] = [];
    await createSpoolSource(spool).consume(async () => undefined, { once: true, prefetch: 1, signal: new AbortController().signal, log: (l) => logs.push(l), refused: () => undefined });
    expect(await readdir(elsewhere)).toEqual([]);
    expect(logs.join('\n')).toMatch(/cannot move x\.json/);
  });

  it('polling skips an entry it cannot move aside and keeps delivering new messages', async () => {
    await mkdir(join(spool, 'x.json'));
    await writeFile(join(spool, 'rejected'), 'not a folder');
    const stop = new AbortController();
    let refusals = 0;
    let arrived!: () => void;
    const gotY = new Promise<void>((resolve) => (arrived = resolve));
    const consuming = createSpoolSource(spool).consume(
      async (d) => {
        await d.ack();
        if (d.id === 'y.json') arrived();
      },
      { once: false, prefetch: 1, signal: stop.signal, log: () => undefined, refused: () => refusals++, onReady: () => void writeFile(join(spool, 'y.json'), '{}') },
    );
    await gotY;
    stop.abort();
    await consuming;
    expect(refusals).toBe(1);
  });
});

describe('zpump subscribe spool:DIR --once', () => {
  it('applies the good message, sets the hostile entries aside with their reasons, exits 1 promptly', async () => {
    const hostile = await hostileEntries();
    const pub = join(tmp.path, 'pub');
    await mkdir(pub);
    await writeFile(join(pub, 'a.txt'), 'hello\n');
    const posted = await runCli(['announce', '--base-url', `file://${pub}/`, '--root', pub, '--post', `spool:${spool}`, join(pub, 'a.txt')]);
    expect(posted.exitCode, posted.stderr).toBe(0);
    const mirror = join(tmp.path, 'mirror');
    const subscriber = startCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--allow-file']);
    // Before the fix a FIFO hung the subscriber for good: give up long before the test's timeout.
    const ended = await Promise.race([subscriber.exited(), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    if (ended === 'hung') await subscriber.kill('SIGKILL');
    expect(ended, subscriber.stderr()).toBe(1);
    expect(await readFile(join(mirror, 'a.txt'), 'utf8')).toBe('hello\n');
    const aside = await readdir(join(spool, 'rejected'));
    for (const name of hostile) expect(aside).toEqual(expect.arrayContaining([name, `${name}.reason.txt`]));
    expect(subscriber.stderr()).toMatch(/refused 4-big\.json: 200000000 bytes, over the 16777216-byte message limit/);
    expect(subscriber.stderr()).toMatch(/1 applied, 5 set aside/);
  });
});
