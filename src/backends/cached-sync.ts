// A sync that reads no seed: the signature the local copy was applied with (local/signature-cache)
// says which blocks are unchanged at the same offsets; the new file starts as a copy of the old
// one (a reflink where the filesystem clones, copy_file_range or a plain copy elsewhere), only
// the changed blocks are fetched and written over it, and the one whole-file check guards the
// result as always. Used when few blocks changed; moved data is left to the scanning sync.

import { constants } from 'node:fs';
import { copyFile, open } from 'node:fs/promises';
import { BlockIndex } from '../engine/block-index.js';
import { rangeBytes, planRanges } from '../engine/plan.js';
import { sameOffsetBlocks } from '../engine/same-offset.js';
import { createStrongHasher } from '../engine/strong-hash.js';
import { fromSystemError } from '../errors.js';
import { strongHashOf, wholeFileChecks, type ControlFile } from '../format/control-file.js';
import { finalCheck } from '../local/final-check.js';
import { OutputFile } from '../local/output-file.js';
import { fetchMissing } from './fetch-missing.js';
import type { SyncRequest, SyncResult } from './types.js';

/** Above this share of the file to fetch, a scan may find the data moved and is worth its read. */
export const MAX_FETCH_SHARE = 1 / 8;

export type StartMode = 'clone' | 'copy-blocks';

/** Test hook: how each start was made. */
export const cachedSyncStats = { clone: 0, copyBlocks: 0 };

export interface CachedPlan {
  known: Uint8Array;
  missingBytes: number;
}

/** What the kept signature gives for this control file, or why it is not used. */
export function planFromPrevious(previous: ControlFile, control: ControlFile): CachedPlan | { why: string } {
  const known = sameOffsetBlocks(previous, control);
  if (!known) return { why: 'the kept signature has another block size, hash lengths or block hash' };
  const missingBytes = rangeBytes(planRanges(known, control.blockSize, control.length));
  if (missingBytes > control.length * MAX_FETCH_SHARE) return { why: `${Math.round((100 * missingBytes) / Math.max(1, control.length))}% of the blocks changed in place: scanning for moved data` };
  return { known, missingBytes };
}

export async function cachedSync(request: SyncRequest, plan: CachedPlan, start: StartMode = 'clone'): Promise<SyncResult> {
  const cf = request.control;
  const index = new BlockIndex(cf);
  const hasher = await createStrongHasher(strongHashOf(cf));
  const check = finalCheck(wholeFileChecks(cf), request.sha512, request.md5InBeforeCommit);
  const out = await OutputFile.create(request.target, cf.length, cf.blockSize, check.hashing);
  try {
    const known = plan.known;
    if (start === 'clone') {
      await cloneInto(request.target, out.path, cf.length);
      cachedSyncStats.clone++;
    } else {
      await copyKnownBlocks(request.target, out, known, cf.blockSize, cf.length);
      cachedSyncStats.copyBlocks++;
    }
    const fetched = plan.missingBytes === 0 ? undefined : await fetchMissing({
      urls: request.dataUrls ?? [request.dataUrl], index, hasher, out, known: new Uint8Array(known), transport: request.transport,
      onProgress: (done, total) => request.onProgress?.('fetch', done, total),
    });
    await request.beforeCommit?.(out.path);
    await out.commit(check.expected, request.mtime ?? cf.mtime);
    return {
      engine: 'js', target: request.target, length: cf.length, bytesReused: cf.length - plan.missingBytes,
      bytesFetched: fetched?.bytesFetched ?? 0, requests: fetched?.requests ?? 0, verified: check.verified,
      ...(fetched ? { servedBy: fetched.servedBy, failedUrls: fetched.failedUrls } : {}),
    };
  } catch (error) {
    await out.discard();
    throw error;
  }
}

/** The temporary becomes a copy of the old version cut or zero-extended to the new length; the target itself is not touched. */
async function cloneInto(source: string, temp: string, length: number): Promise<void> {
  try {
    // FICLONE: a reflink where the filesystem shares extents (btrfs, xfs), else libuv copies
    // (copy_file_range, in the kernel) — the temporary's open handle stays on the same inode.
    await copyFile(source, temp, constants.COPYFILE_FICLONE);
    const handle = await open(temp, 'r+');
    try {
      // copyFile gave it the old copy's mode: private again until it is verified (atomic-file).
      await handle.chmod(0o600);
      await handle.truncate(length);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw fromSystemError(error, 'cannot start the new version from the old one', temp);
  }
}

/** The plain start: unchanged blocks read from the old version and written at their offsets, in file order. */
async function copyKnownBlocks(source: string, out: OutputFile, known: Uint8Array, blockSize: number, length: number): Promise<void> {
  const handle = await open(source, 'r').catch((error: unknown) => { throw fromSystemError(error, 'cannot read the old version', source); });
  try {
    const runBlocks = Math.max(1, Math.floor((4 << 20) / blockSize));
    const buf = new Uint8Array(runBlocks * blockSize);
    for (let id = 0; id < known.length; ) {
      if (!known[id]) { id++; continue; }
      let end = id;
      while (end < known.length && known[end] && end - id < runBlocks) end++;
      const offset = id * blockSize;
      const n = Math.min(end * blockSize, length) - offset;
      const { bytesRead } = await handle.read(buf, 0, n, offset);
      // A short read: the copy ends early (the new length is longer), the rest of it is zeros.
      if (bytesRead < n) buf.fill(0, bytesRead, n);
      out.writeAt(offset, buf.subarray(0, n));
      id = end;
    }
  } finally {
    await handle.close();
  }
}
