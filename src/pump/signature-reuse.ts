// The subscriber's sync with the signature of the last version reused. After a file is applied
// from a message carrying a signature, that signature is kept (local/signature-cache). When the
// next message for the file comes and the local copy is still the one applied, the blocks whose
// records did not change are taken from it without a scan (backends/cached-sync); on any doubt
// (no entry, keys or geometry differ, too much changed) the usual sync runs, and when the result
// of the reuse fails its final check the sync is redone with a scan.

import { sync, type SyncOptions, type SyncOutcome } from '../api.js';
import { cachedSync, planFromPrevious, type StartMode } from '../backends/cached-sync.js';
import type { SyncRequest } from '../backends/types.js';
import { isZpumpError } from '../errors.js';
import { checkableIdentity, dataUrlOf, parseV03Time, type Announcement } from '../format/announcement.js';
import { ALL_SCHEMES } from '../format/url-policy.js';
import { parseControlFile, type ControlFile } from '../format/control-file.js';
import { verifyIdentity } from '../local/identity-check.js';
import { loadSignature, saveSignature } from '../local/signature-cache.js';

/** Test hook: what happened to each message. */
export const signatureReuseStats = { reused: 0, redone: 0, ignored: 0, saved: 0 };

/** Test and benchmark hook: how the new file starts (ZPUMP_START=copy-blocks for the plain path). */
const startMode = (): StartMode => (process.env.ZPUMP_START === 'copy-blocks' ? 'copy-blocks' : 'clone');

export async function syncReusingSignature(
  options: SyncOptions & { control: Announcement; target: string },
  where: { dir: string; relPath: string },
  log: (line: string) => void,
): Promise<SyncOutcome> {
  const message = options.control;
  const control = inlineSingleLevel(message);
  if (control && (options.seeds ?? []).length === 0 && options.engine !== 'zsync') {
    const reused = await tryReuse(options, message, control, where, log);
    if (reused) {
      await remember(where, options.target, control);
      return reused;
    }
  }
  const result = await sync(options);
  if (control) await remember(where, options.target, control);
  return result;
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
    ...(identity.method === 'sha512' ? { sha512: identity.value } : {}),
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
