// Every write of user data goes to a temporary file in the destination's folder (same
// filesystem, so the final rename is atomic), is checked, and only then renamed into place.
// Temporary names are recognisable so a later run can remove what a killed run left behind.

import { randomBytes } from 'node:crypto';
import { chmod, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fromSystemError } from '../errors.js';

const SUFFIX = '.zpump-tmp';

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}${SUFFIX}`);
}

export interface TempFile {
  path: string;
  handle: FileHandle;
  /** Rename over the target (after the caller has verified the content). */
  commit(mode?: number): Promise<void>;
  /** Remove the temporary file; safe to call after commit or twice. */
  discard(): Promise<void>;
}

export async function createTempFile(target: string): Promise<TempFile> {
  const path = tempPathFor(target);
  let handle: FileHandle;
  try {
    handle = await open(path, 'wx+', 0o600);
  } catch (error) {
    throw fromSystemError(error, 'cannot create a temporary file beside the output', path);
  }
  let done = false;
  return {
    path,
    handle,
    async commit(mode = 0o644) {
      await handle.close().catch(() => undefined);
      try {
        await chmod(path, mode & ~process.umask());
        await rename(path, target);
      } catch (error) {
        await rm(path, { force: true });
        throw fromSystemError(error, 'cannot move the result into place', target);
      }
      done = true;
    },
    async discard() {
      if (done) return;
      done = true;
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
    },
  };
}

/** Remove temporary files that an interrupted run left beside `target`. */
export async function removeStaleTemps(target: string): Promise<number> {
  const prefix = `.${basename(target)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(target));
  } catch {
    return 0;
  }
  const stale = names.filter((n) => n.startsWith(prefix) && n.endsWith(SUFFIX) && /^[0-9a-f]{8}$/.test(n.slice(prefix.length, -SUFFIX.length)));
  await Promise.all(stale.map((n) => rm(join(dirname(target), n), { force: true })));
  return stale.length;
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
