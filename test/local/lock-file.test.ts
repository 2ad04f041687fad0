import { readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockPathFor, withFileLock } from '../../src/local/lock-file.js';

let tmp: DirectoryResult;
beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('withFileLock', () => {
  it('lets one writer at a time work on a file, and removes the lock afterwards', async () => {
    const target = join(tmp.path, 'f.bin');
    const events: string[] = [];
    const worker = (name: string) =>
      withFileLock(target, async () => {
        events.push(`${name} in`);
        await sleep(50);
        events.push(`${name} out`);
      });
    await Promise.all([worker('a'), worker('b'), worker('c')]);
    for (let i = 0; i < events.length; i += 2) expect(events[i + 1]).toBe(events[i]!.replace('in', 'out'));
    expect(await readdir(tmp.path)).toEqual([]);
  });

  it('takes over a lock left by a dead process on this host', async () => {
    const target = join(tmp.path, 'f.bin');
    await writeFile(lockPathFor(target), `${hostname()} 999999999 2026-01-01T00:00:00Z\n`);
    expect(await withFileLock(target, async () => 'done', 2000)).toBe('done');
  });

  it('waits for a live holder, then gives up with a clear error', async () => {
    const target = join(tmp.path, 'f.bin');
    await writeFile(lockPathFor(target), `${hostname()} ${process.pid} now\n`);
    await expect(withFileLock(target, async () => 'never', 300)).rejects.toThrow(/locked by another subscriber/);
  });
});
