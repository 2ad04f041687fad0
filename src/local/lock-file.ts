// One writer per file, across processes and machines sharing a folder: a lock file beside the
// target, made with O_EXCL. A lock left by a dead process on this host (or one older than any
// sane transfer) is taken over, so a killed subscriber never blocks the file for good.

import { hostname } from 'node:os';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import { removeOnExit } from './exit-cleanup.js';
import { tempNameFor, tempStem } from './temp-owner.js';

export const LOCK_SUFFIX = '.zpump-lock';
const STALE_MS = 6 * 3600_000;

export function lockPathFor(target: string): string {
  // ".NAME" as temporaries have it: shortened with a hash when long, so that a file whose name
  // is near NAME_MAX (255 bytes) can still be locked (".NAME.zpump-lock" would not fit).
  return join(dirname(target), `${tempStem(target)}${LOCK_SUFFIX}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's text when it is stale (its owner gone, or too old), else undefined; '' when it is gone. */
async function staleText(path: string): Promise<string | undefined> {
  const [text, st] = await Promise.all([readFile(path, 'utf8').catch(() => ''), stat(path).catch(() => undefined)]);
  if (!st) return ''; // gone meanwhile: try again
  const [host, pid] = text.trim().split(/\s+/);
  if (host === hostname() && Number(pid) > 0 && !alive(Number(pid))) return text;
  return Date.now() - st.mtimeMs > STALE_MS ? text : undefined;
}

/**
 * Takes a stale lock out of the way, but never one made meanwhile: two waiters that both judged
 * the old lock stale used to remove it in turn, the second removing the lock the first had just
 * taken, and then both wrote the file. The lock is moved aside (only one mover gets a given
 * file) and given back if it is not the one judged stale.
 */
export async function breakStaleLock(target: string, judged: string): Promise<void> {
  const path = lockPathFor(target);
  // Named as a temporary of ours: should we die right here, the next run removes it.
  const aside = join(dirname(target), tempNameFor(target));
  try {
    await rename(path, aside);
  } catch {
    return; // gone: another waiter broke it
  }
  if ((await readFile(aside, 'utf8').catch(() => '')) !== judged) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

/**
 * Run `work` holding the lock of `target`. Waiting for another holder is bounded (`timeoutMs`) and
 * ends at once when `signal` aborts (SIGTERM, a newer message for the file): it then rejects with
 * the signal's abort error and takes no lock.
 */
export async function withFileLock<T>(target: string, work: () => Promise<T>, timeoutMs = 30 * 60_000, signal?: AbortSignal): Promise<T> {
  const path = lockPathFor(target);
  const deadline = Date.now() + timeoutMs;
  let mine = '';
  for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
    signal?.throwIfAborted();
    try {
      const fh = await open(path, 'wx', 0o644);
      mine = `${hostname()} ${process.pid} ${new Date().toISOString()} ${Math.random().toString(16).slice(2)}\n`;
      await fh.writeFile(mine);
      await fh.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(error, 'cannot lock', target);
      const stale = await staleText(path);
      if (stale !== undefined) {
        if (stale !== '') await breakStaleLock(target, stale);
        continue;
      }
      if (Date.now() > deadline) throw new ZpumpError('E_IO', `${target} is locked by another subscriber (${path}); giving up after ${Math.round(timeoutMs / 1000)} s`);
      await sleep(wait, undefined, signal ? { signal } : undefined);
    }
  }
  // A process that ends by process.exit (subscribe's grace period after SIGTERM, while a scan
  // still runs) or by a signal takes its lock along: left behind, it would block the file for
  // STALE_MS on every other host sharing the folder.
  const forget = removeOnExit(path);
  try {
    return await work();
  } finally {
    // After a signal the lock went with the other temporaries, and may be another writer's by now.
    if ((await readFile(path, 'utf8').catch(() => '')) === mine) await rm(path, { force: true });
    forget();
  }
}
