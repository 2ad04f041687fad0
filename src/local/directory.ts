// Folders named on the command line (subscribe --dir, watch DIR): checked up front so that a
// file in their place is reported as what it is, not as the EEXIST or ENOTDIR of a later call.

import { mkdir, stat } from 'node:fs/promises';
import { fromSystemError, ZpumpError } from '../errors.js';

/** The folder must exist. */
export async function requireDirectory(path: string, what: string): Promise<void> {
  const st = await stat(path).catch((error: unknown) => {
    throw fromSystemError(error, what, path);
  });
  if (!st.isDirectory()) throw new ZpumpError('E_BAD_INPUT', `${what}: ${path} is not a directory`, { data: { path } });
}

/** The folder is made when missing (with its parents); anything else in its place is refused. */
export async function ensureDirectory(path: string, what: string): Promise<void> {
  const st = await stat(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw inTheWay(error, what, path);
  });
  if (st && !st.isDirectory()) throw new ZpumpError('E_BAD_INPUT', `${what}: ${path} is not a directory`, { data: { path } });
  if (!st) {
    try {
      await mkdir(path, { recursive: true });
    } catch (error) {
      throw inTheWay(error, what, path);
    }
  }
}

// A file somewhere above it: stat and mkdir say EEXIST or ENOTDIR, neither of which names the cause.
function inTheWay(error: unknown, what: string, path: string): ZpumpError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR') return new ZpumpError('E_BAD_INPUT', `${what}: cannot make ${path}: a file is in the way`, { data: { path }, cause: error });
  return fromSystemError(error, what, path);
}
