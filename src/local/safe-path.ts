// Local paths named by messages: a relPath lands under the subscriber's --dir and nowhere else.
// Resolving once is not enough: between a message's retries someone may swap a folder of the
// tree for a symbolic link to elsewhere. So the walk below (lstat of every component from the
// root down, no link followed) runs when the path is resolved and again right before each write,
// rename and remove.

import { lstat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { ZpumpError } from '../errors.js';

const unsafe = (message: string): ZpumpError => new ZpumpError('E_UNSAFE_PATH', message);

/**
 * zpump's own files in a tree: lock files, temporaries, its .zpump/ folder (rejected messages).
 * A message naming one could plant a lock that blocks a file for hours, or overwrite what zpump
 * keeps for itself.
 */
export function isZpumpOwnName(segment: string): boolean {
  // Case-insensitive: on macOS and Windows file systems ".ZPUMP" and ".K.ZPUMP-LOCK" are zpump's own names.
  const name = segment.toLowerCase();
  return name === '.zpump' || name.endsWith('.zpump-lock') || name.includes('.zpump-tmp');
}

/** Refuse a relPath (slash-separated) that names one of zpump's own files or folders. */
export function refuseOwnNames(relPath: string, field: string): void {
  if (relPath.split('/').some(isZpumpOwnName)) {
    throw unsafe(`${field} ${JSON.stringify(relPath)} names one of zpump's own files (*.zpump-lock, *.zpump-tmp*, .zpump/); a message can never target them`);
  }
}

/**
 * Check that `target` (an absolute path under `root`, the real path of --dir) is reached from
 * root through real folders only: every existing component is a directory and not a symbolic
 * link, and the target itself is absent or a regular file. Missing components are fine (they
 * are about to be made, and this check runs again before the write).
 */
export async function checkUnderRoot(root: string, target: string, shown: string): Promise<void> {
  const rel = relative(root, target);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || rel.startsWith(sep)) throw unsafe(`relPath ${JSON.stringify(shown)} resolves outside --dir`);
  const parts = rel.split(sep);
  refuseOwnNames(parts.join('/'), 'relPath');
  let path = root;
  for (const [i, part] of parts.entries()) {
    path = `${path}${sep}${part}`;
    const st = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw new ZpumpError('E_IO', `cannot check ${path}: ${error.code ?? error.message}`);
    });
    if (!st) return;
    const last = i === parts.length - 1;
    if (st.isSymbolicLink()) {
      throw unsafe(last ? `relPath ${JSON.stringify(shown)} is a symbolic link in --dir; refusing to write through it` : `relPath ${JSON.stringify(shown)} leads outside --dir through a symbolic link (${path})`);
    }
    if (!last && !st.isDirectory()) throw unsafe(`relPath ${JSON.stringify(shown)}: ${path} is not a folder`);
    if (last && !st.isFile()) throw unsafe(`relPath ${JSON.stringify(shown)} is a ${st.isDirectory() ? 'directory' : 'special file'} in --dir`);
  }
}
