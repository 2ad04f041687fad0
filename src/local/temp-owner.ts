// Names of zpump's temporaries say who made them: `.NAME.HOST.PID.RANDOM.zpump-tmp`. A later run
// (or a concurrent one) removes a temporary only when its owner is gone: a dead process on this
// host, or, for another host sharing the folder, one not touched for a day. Without the owner in
// the name, one sync used to delete another's live file.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';

export const TEMP_SUFFIX = '.zpump-tmp';
/** How long a temporary of another host (whose processes we cannot ask) is left alone. */
export const FOREIGN_STALE_MS = 24 * 3600_000;

/**
 * A host name as it can appear in a temporary's name: only [A-Za-z0-9_-] (the name is split on
 * dots, and a host name must not smuggle path characters), at most 40 characters. A name that had
 * to be changed gets a hash of the real one: "node.a" and "node_a", or two long names alike in
 * their first 40 characters, would otherwise share a label, and each host would take the other's
 * live temporaries for those of its own dead processes and remove them.
 */
export function hostLabelOf(name: string): string {
  const plain = name.replace(/[^A-Za-z0-9_-]/g, '_');
  if (plain === name && name.length > 0 && name.length <= 40) return name;
  return `${plain.slice(0, 31)}_${createHash('sha1').update(name).digest('hex').slice(0, 8)}`;
}

export const HOST_LABEL = hostLabelOf(hostname());

// NAME_MAX is 255 bytes: a long target name is shortened, with a hash to keep it distinct.
const MAX_STEM_BYTES = 150;

/** `.NAME`, shortened when the whole temporary name would not fit in a directory entry. */
export function tempStem(target: string): string {
  const name = basename(target);
  if (Buffer.byteLength(name) <= MAX_STEM_BYTES) return `.${name}`;
  let cut = '';
  for (const ch of name) {
    if (Buffer.byteLength(cut + ch) > MAX_STEM_BYTES - 10) break;
    cut += ch;
  }
  return `.${cut}~${createHash('sha1').update(name).digest('hex').slice(0, 8)}`;
}

export function tempNameFor(target: string): string {
  return `${tempStem(target)}.${HOST_LABEL}.${process.pid}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`;
}

export type TempOwner = { host: string; pid: number } | { host: undefined; pid: undefined };

const OWNED = /^\.([A-Za-z0-9_-]+)\.(\d+)\.[0-9a-f]{8}\.zpump-tmp$/;
// Before owners were recorded: `.NAME.RANDOM.zpump-tmp`, and the zsync client's `.part`, `.zsync`
// and `.zs-old` beside it.
const LEGACY = /^\.[0-9a-f]{8}\.zpump-tmp(\.part|\.zsync|\.zs-old)?$/;

/** The owner of `name` if it is one of `target`'s temporaries (owner unknown for old names), else null. */
export function tempOwnerOf(name: string, target: string): TempOwner | null {
  const stem = tempStem(target);
  if (!name.startsWith(stem)) return null;
  const rest = name.slice(stem.length);
  const owned = OWNED.exec(rest);
  if (owned) return { host: owned[1]!, pid: Number(owned[2]) };
  return LEGACY.test(rest) ? { host: undefined, pid: undefined } : null;
}

export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a temporary with this owner, last modified at `mtimeMs`, may be removed now. */
export function ownerGone(owner: TempOwner, mtimeMs: number, now = Date.now()): boolean {
  if (owner.host === HOST_LABEL) return !processAlive(owner.pid);
  return now - mtimeMs > FOREIGN_STALE_MS;
}

/**
 * Open our own temporary for writing from another thread, which gets only its name: not through
 * a symlink, and only a file of ours with no other name (whoever can write in the folder could
 * otherwise rename a link to some other file over the temporary, and the thread would write into
 * that file). The main thread's final check and rename are re-checked as always.
 */
export function openOwnTemp(path: string): number {
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  const st = fstatSync(fd);
  const mine = process.getuid === undefined || st.uid === process.getuid();
  if (!st.isFile() || st.nlink !== 1 || !mine) {
    closeSync(fd);
    throw Object.assign(new Error(`${path} is no longer the temporary zpump made (a link or another file took its name)`), { code: 'E_NOT_OWN_TEMP' });
  }
  return fd;
}
