// Every write of user data goes to a temporary file in the destination's folder (same
// filesystem, so the final rename is atomic), is checked, and only then renamed into place.
// Temporary names carry their owner (host and pid, see temp-owner.ts) so a later run removes what
// a killed run left behind without touching a temporary another live run is still writing.

import { chmod, lstat, mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fromSystemError } from '../errors.js';
import { removeOnExit } from './exit-cleanup.js';
import { ownerGone, tempNameFor, tempOwnerOf } from './temp-owner.js';

export function tempPathFor(target: string): string {
  return join(dirname(target), tempNameFor(target));
}

/**
 * The mode a new version of `target` gets: the old file's (permission bits only: a set-uid bit
 * must not carry over to new content), else what a plain create would give (0666 less the umask).
 */
export async function modeForReplacing(target: string): Promise<number> {
  try {
    return (await stat(target)).mode & 0o777;
  } catch {
    return 0o666 & ~process.umask();
  }
}

export interface TempFile {
  path: string;
  handle: FileHandle;
  /** Rename over the target (after the caller has verified the content); mode default: modeForReplacing. */
  commit(mode?: number): Promise<void>;
  /** Remove the temporary file; safe to call after commit or twice. */
  discard(): Promise<void>;
}

export async function createTempFile(target: string): Promise<TempFile> {
  const path = tempPathFor(target);
  let handle: FileHandle;
  try {
    // Private until it is complete: 0600 here, the final mode just before the rename.
    handle = await open(path, 'wx+', 0o600);
  } catch (error) {
    throw fromSystemError(error, 'cannot create a temporary file beside the output', path);
  }
  const forget = removeOnExit(path);
  let done = false;
  return {
    path,
    handle,
    async commit(mode) {
      await handle.close().catch(() => undefined);
      try {
        await chmod(path, mode ?? (await modeForReplacing(target)));
        await rename(path, target);
      } catch (error) {
        await rm(path, { force: true });
        throw fromSystemError(error, 'cannot move the result into place', target);
      } finally {
        forget();
      }
      done = true;
    },
    async discard() {
      if (done) return;
      done = true;
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
      forget();
    },
  };
}

export interface TempDir {
  path: string;
  /** Remove the folder and everything in it; safe to call twice. */
  remove(): Promise<void>;
}

/** A private folder beside `target` for a helper tool's files, removed however the process ends. */
export async function createTempDir(target: string, options: { kill?: () => void } = {}): Promise<TempDir & { setKill(kill: () => void): void }> {
  const path = tempPathFor(target);
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (error) {
    throw fromSystemError(error, 'cannot create a temporary folder beside the output', path);
  }
  let kill = options.kill;
  const forget = removeOnExit(path, () => kill?.());
  let removed = false;
  return {
    path,
    setKill(k) {
      kill = k;
    },
    async remove() {
      if (removed) return;
      removed = true;
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
      forget();
    },
  };
}

/** Remove the temporaries an interrupted run left beside `target`; those of live runs stay. */
export async function removeStaleTemps(target: string, now = Date.now()): Promise<number> {
  const folder = dirname(target);
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const owner = tempOwnerOf(name, target);
    if (!owner) continue;
    const path = join(folder, name);
    const touched = await lastTouched(path);
    if (touched === undefined || !ownerGone(owner, touched, now)) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** Newest mtime of a file, or of a folder and what is directly in it (a helper writing there). */
async function lastTouched(path: string): Promise<number | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isDirectory()) return st.mtimeMs;
    let newest = st.mtimeMs;
    for (const name of await readdir(path)) {
      const inner = await lstat(join(path, name)).catch(() => undefined);
      if (inner) newest = Math.max(newest, inner.mtimeMs);
    }
    return newest;
  } catch {
    return undefined;
  }
}

/** A small file written whole: temporary beside it, optionally fsync'd, renamed into place. */
export async function writeFileAtomically(target: string, data: string | Uint8Array, options: { fsync?: boolean } = {}): Promise<void> {
  const temp = await createTempFile(target);
  try {
    await temp.handle.writeFile(data);
    if (options.fsync) await temp.handle.sync();
    await temp.commit();
  } catch (error) {
    await temp.discard();
    throw fromSystemError(error, 'cannot write', target);
  }
}
