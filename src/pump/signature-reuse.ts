// The subscriber's sync with the signature of the last version reused. After a file is applied
// from a message carrying a signature, that signature is kept (local/signature-cache). When the
// next message for the file comes and the local copy is still the one applied, the blocks whose
// records did not change are taken from it without a scan (backends/cached-sync); on any doubt
// (no entry, keys or geometry differ, too much changed) the usual sync runs, and when the result
// of the reuse fails its final check the sync is redone with a scan.
// Two-level messages: what is kept and compared is the fine signature (the coarse one's blocks
// are too large to say much), fetched whole and checked against its identity in the message.

import { createHash } from 'node:crypto';
import { sync, type SyncOptions, type SyncOutcome } from '../api.js';
import { cachedSync, planFromPrevious, type StartMode } from '../backends/cached-sync.js';
import type { SyncRequest } from '../backends/types.js';
import { isZpumpError } from '../errors.js';
import { checkableIdentity, dataUrlOf, fineSignatureOf, parseV03Time, type Announcement } from '../format/announcement.js';
import { ALL_SCHEMES, MAX_REFERENCED_SIGNATURE_BYTES, cappedSize } from '../format/url-policy.js';
import { openRangeSource } from '../transport/open.js';
import { parseControlFile, type ControlFile } from '../format/control-file.js';
import { verifyIdentity } from '../local/identity-check.js';
import { loadSignature, saveSignature } from '../local/signature-cache.js';

/** Test hook: what happened to each message. */
export const signatureReuseStats = { reused: 0, redone: 0, ignored: 0, saved: 0 };
/** A fine signature this large describes ~8 GiB at 4 KiB blocks. */
const MAX_KEPT_FINE = 16 << 20;
/** Test hook: fine signatures fetched whole for keeping or comparing. */
export const fineStats = { fetched: 0 };

/** Test and benchmark hook: how the new file starts (ZPUMP_START=copy-blocks for the plain path). */
const startMode = (): StartMode => (process.env.ZPUMP_START === 'copy-blocks' ? 'copy-blocks' : 'clone');

export async function syncReusingSignature(
  options: SyncOptions & { control: Announcement; target: string },
  where: { dir: string; relPath: string },
  log: (line: string) => void,
): Promise<SyncOutcome> {
  const message = options.control;
  // ZPUMP_REUSE=0: benchmarks compare with the sync that keeps nothing.
  if (process.env.ZPUMP_REUSE === '0') return sync(options);
  const usable = options.engine !== 'zsync' && (options.seeds ?? []).length === 0;
  const twoLevel = usable && message.zsync?.fine !== undefined;
  const fine = twoLevel ? await fetchFine(message, options) : undefined;
  let control = usable ? (twoLevel ? fine?.control : inlineSingleLevel(message)) : undefined;
  if (control) {
    const reused = await tryReuse(options, message, control, where, log);
    if (reused) {
      await remember(where, options.target, control);
      // The fine file is part of what this sync fetched.
      return fine ? { ...reused, bytesFetched: reused.bytesFetched + fine.bytes, signatureBytes: fine.bytes } : reused;
    }
  }
  // The fine file, fetched whole to be kept, also serves the two-level sync: no record of it fetched twice.
  const synced = await sync(fine ? { ...options, fineControl: fine.control } : options);
  const result = fine ? { ...synced, bytesFetched: synced.bytesFetched + fine.bytes, signatureBytes: (synced.signatureBytes ?? 0) + fine.bytes } : synced;
  // Kept for next time; when the whole fine file could not be had before, it is tried again here.
  if (!control && twoLevel && !fine) control = (await fetchFine(message, options))?.control;
  if (control) await remember(where, options.target, control);
  return result;
}

/** A two-level message's fine signature, whole, when it is the one its identity names and describes the announced file. */
async function fetchFine(message: Announcement, options: SyncOptions): Promise<{ control: ControlFile; bytes: number } | undefined> {
  const fine = fineSignatureOf(message, { schemes: options.schemes ?? ALL_SCHEMES });
  if (!('url' in fine)) return undefined;
  try {
    const identity = checkableIdentity(fine.identity);
    // Held in memory whole, here and when compared next time: larger ones (files of many GiB) are left to the two-level sync.
    const size = cappedSize(fine.size, Math.min(MAX_KEPT_FINE, MAX_REFERENCED_SIGNATURE_BYTES), 'zsync.fine.size');
    if (!identity) return undefined;
    const bytes = new Uint8Array(size);
    let received = 0;
    const source = await openRangeSource(fine.url, options.transport);
    try {
      await source.readRanges([{ start: 0, end: size }], (chunk) => {
        bytes.set(chunk.data, chunk.offset);
        received += chunk.data.length;
      });
    } finally {
      await source.close();
    }
    if (received !== size || createHash(identity.method).update(bytes).digest('base64') !== identity.value) return undefined;
    const control = parseControlFile(bytes);
    fineStats.fetched++;
    return control.length === message.size && control.blockSize === fine.blockSize && !control.gzip ? { control, bytes: size } : undefined;
  } catch {
    return undefined; // no reuse; the usual two-level sync has its own ways with a bad fine file
  }
}

async function remember(where: { dir: string; relPath: string }, target: string, control: ControlFile): Promise<void> {
  if (await saveSignature(where.dir, where.relPath, target, control)) signatureReuseStats.saved++;
}

/** The message's one signature, when it travels inside it (a two-level message's coarse level is not one the records of a copy compare with). */
function inlineSingleLevel(message: Announcement): ControlFile | undefined {
  const z = message.zsync;
  if (z?.kind !== 'inline' || z.fine !== undefined) return undefined;
  try {
    const control = parseControlFile(z.bytes);
    return control.length === message.size && !control.gzip ? control : undefined;
  } catch {
    return undefined; // the usual sync reports what is wrong with it
  }
}

async function tryReuse(
  options: SyncOptions & { control: Announcement; target: string },
  message: Announcement,
  control: ControlFile,
  where: { dir: string; relPath: string },
  log: (line: string) => void,
): Promise<SyncOutcome | undefined> {
  const started = performance.now();
  const identity = checkableIdentity(message.identity, options.acceptUnverified);
  if (!identity) return undefined; // nothing would check the result as a whole
  const kept = await loadSignature(where.dir, where.relPath, options.target);
  if ('why' in kept) {
    signatureReuseStats.ignored++;
    return undefined;
  }
  const plan = planFromPrevious(kept.control, control);
  if ('why' in plan) {
    signatureReuseStats.ignored++;
    return undefined;
  }
  const dataUrl = dataUrlOf(message, { schemes: options.schemes ?? ALL_SCHEMES });
  const mtimeMs = message.mtime === undefined ? undefined : parseV03Time(message.mtime);
  const request: SyncRequest = {
    control, controlLocation: 'announcement', dataUrl, dataUrls: [dataUrl], target: options.target, seeds: [options.target],
    transport: options.transport, onProgress: options.onProgress,
    ...(identity.method === 'sha512' ? { sha512: identity.value } : { md5InBeforeCommit: true }),
    ...(mtimeMs !== undefined ? { mtime: mtimeMs / 1000 } : {}),
    beforeCommit: async (tempPath) => {
      if (identity.method === 'md5') await verifyIdentity(tempPath, identity, options.target);
      await options.beforeCommit?.(tempPath);
    },
  };
  try {
    const result = await cachedSync(request, plan, startMode());
    signatureReuseStats.reused++;
    return { ...result, dataUrl: result.servedBy ?? dataUrl, seconds: Math.round(performance.now() - started) / 1000 };
  } catch (error) {
    if (!isZpumpError(error) || error.code !== 'E_VERIFY') throw error;
    // The copy did not hold what its kept signature says (changed behind our back with its keys
    // restored), or the server is at fault: a scan of the copy tells, the usual sync decides.
    signatureReuseStats.redone++;
    log(`${where.relPath}: the blocks taken from the kept signature did not give the announced file (${error.message}); syncing again with a scan`);
    return undefined;
  }
}
