// The signature of the version a subscriber last applied, kept under DIR/.zpump/signatures/ (a
// folder messages can never target). It says what every block of the local copy holds without
// reading it, as long as the copy has not changed since: the entry carries the copy's size,
// mtime, ctime, inode and device at the time it was applied, and is believed only while they all
// still match. What those keys cannot see (a rewrite that restores them all) the final identity
// check of the sync catches.
//
// One file per relPath, named by the SHA-256 of the relPath (any relPath fits a file name), the
// relPath itself inside: one JSON line of keys, then the control file as zsync writes it.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseControlFile, renderControlFile, type ControlFile } from '../format/control-file.js';
import { writeFileAtomically } from './atomic-file.js';

const FORMAT = 1;
/** More than any signature a message may carry (inline or referenced): anything larger is not ours. */
const MAX_ENTRY_BYTES = 64 << 20;

interface Keys {
  format: number;
  relPath: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
}

export function signatureCacheDir(dir: string): string {
  return join(dir, '.zpump', 'signatures');
}

function entryPath(dir: string, relPath: string): string {
  return join(signatureCacheDir(dir), `${createHash('sha256').update(relPath).digest('hex')}.zsync`);
}

async function keysOf(path: string, relPath: string): Promise<Keys | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return { format: FORMAT, relPath, size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), ino: String(st.ino), dev: String(st.dev) };
}

/** Remember that `target` (just put in place) is what `control` describes. Best effort: a cache that cannot be written is only a slower next sync. */
export async function saveSignature(dir: string, relPath: string, target: string, control: ControlFile): Promise<boolean> {
  try {
    const keys = await keysOf(target, relPath);
    if (!keys) return false;
    await mkdir(signatureCacheDir(dir), { recursive: true });
    const head = Buffer.from(`${JSON.stringify(keys)}\n`);
    await writeFileAtomically(entryPath(dir, relPath), Buffer.concat([head, renderControlFile(control)]));
    return true;
  } catch {
    return false;
  }
}

/** Forget what is kept for relPath (the file was replaced by other means, or removed). */
export async function dropSignature(dir: string, relPath: string): Promise<void> {
  await rm(entryPath(dir, relPath), { force: true }).catch(() => undefined);
}

export type Lookup = { control: ControlFile } | { why: string };

/** The kept signature of `target`, when every key still matches the file as it is now. */
export async function loadSignature(dir: string, relPath: string, target: string): Promise<Lookup> {
  let bytes: Buffer;
  try {
    const path = entryPath(dir, relPath);
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_ENTRY_BYTES) return { why: 'the kept entry is not a plain file of a sane size' };
    bytes = await readFile(path);
  } catch {
    return { why: 'no signature kept for it' };
  }
  const eol = bytes.indexOf(10);
  if (eol < 0) return { why: 'the kept entry is corrupt' };
  let kept: Keys;
  let control: ControlFile;
  try {
    kept = JSON.parse(bytes.subarray(0, eol).toString('utf8')) as Keys;
    control = parseControlFile(bytes.subarray(eol + 1));
  } catch {
    return { why: 'the kept entry is corrupt' };
  }
  if (kept.format !== FORMAT || kept.relPath !== relPath) return { why: 'the kept entry is for something else' };
  const now = await keysOf(target, relPath);
  if (!now) return { why: 'no local copy' };
  for (const k of ['size', 'mtimeNs', 'ctimeNs', 'ino', 'dev'] as const) {
    if (kept[k] !== now[k]) return { why: `the local copy changed since it was applied (${k})` };
  }
  if (String(control.length) !== now.size) return { why: 'the kept entry is corrupt' };
  return { control };
}
