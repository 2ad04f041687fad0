// The zsync client as a sync backend. It gets a private copy of the control file whose URL is the
// absolute data URL (so relative URLs and --url behave the same as in the js engine), and we
// verify the SHA-1 ourselves before renaming. Everything zsync writes (its rcksum-XXXXXX working
// file, OUT.part, OUT.zs-old) and our control copy live in one private folder beside the target:
// it is zsync's working directory and TMPDIR, and it goes away on every exit path, so a failed or
// killed zsync can neither litter the target's folder nor keep a full disk full for the js fallback.

import { chmod, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ZpumpError, fromSystemError } from '../errors.js';
import { renderControlFile, wholeFileChecks } from '../format/control-file.js';
import { createTempDir, modeForReplacing, removeStaleTemps } from '../local/atomic-file.js';
import { interruption } from '../local/exit-cleanup.js';
import { digestFile } from '../local/file-digest.js';
import { DEFAULT_STALL_TIMEOUT_MS } from '../transport/open.js';
import { clientCannotRead, requireTool } from './locate.js';
import { watchChildIo } from './stall-watch.js';
import type { SyncRequest, SyncResult } from './types.js';

export function zsyncCanFetch(dataUrl: string): boolean {
  return dataUrl.startsWith('http://');
}

/**
 * Which URL served the data, from the client's own lines: zsync 0.6.2 prints "downloading from
 * URL:" and "failed to retrieve from URL", 0.7+ "downloading new blocks from URL:" and "failed to
 * complete download from URL". The last URL started and not given up on is the one.
 */
function servedByOf(said: string): { servedBy?: string; failedUrls?: Array<{ url: string; reason: string }> } {
  let servedBy: string | undefined;
  const failed: string[] = [];
  for (const m of said.matchAll(/(downloading (?:new blocks )?from|failed to (?:retrieve|complete download) from) (\S+?):?(?=\s|$)/g)) {
    if (m[1]!.startsWith('downloading')) servedBy = m[2];
    else if (servedBy !== undefined && m[2] === servedBy) { failed.push(servedBy); servedBy = undefined; }
  }
  return {
    ...(servedBy ? { servedBy } : {}),
    ...(failed.length > 0 ? { failedUrls: failed.map((url) => ({ url, reason: 'zsync could not fetch from it' })) } : {}),
  };
}

export async function zsyncClientSync(request: SyncRequest): Promise<SyncResult> {
  const tool = await requireTool('zsync');
  const cf = request.control;
  // zsync tries every URL: line itself (0.6.2 in random order), so it gets all it can fetch.
  const urls = (request.dataUrls ?? [request.dataUrl]).filter(zsyncCanFetch);
  if (urls.length === 0) {
    throw new ZpumpError('E_UNSUPPORTED', `zsync 0.6.2 fetches plain http:// only, not ${request.dataUrl}; use --engine js (or auto)`);
  }
  const unreadable = clientCannotRead(tool, cf);
  if (unreadable) throw new ZpumpError('E_UNSUPPORTED', `${unreadable}: use --engine js (or auto)`);
  const checks = wholeFileChecks(cf);
  if (cf.length === 0) throw new ZpumpError('E_BACKEND', 'zsync 0.6.2 refuses control files of empty files (Length 0)');
  await removeStaleTemps(request.target);
  const work = await createTempDir(request.target);
  // Absolute: zsync's working directory is this folder, so a relative name would resolve twice.
  const folder = resolve(work.path);
  const out = join(folder, 'out');
  const controlCopy = join(folder, 'control.zsync');
  const { execa } = await import('execa');
  const args = ['-o', out];
  // zsync runs inside the temporary folder: relative seed paths would resolve there.
  for (const seed of request.seeds) args.push('-i', resolve(seed));
  // A gzip-inside file cannot be rewritten (zpump does not render Z-Map2): zsync gets it as it
  // is, with the data URL as the base its relative Z-URLs resolve against.
  if (cf.gzip) args.push('-u', request.dataUrl, /^https?:\/\//.test(request.controlLocation) ? request.controlLocation : resolve(request.controlLocation));
  else args.push(controlCopy);
  try {
    if (!cf.gzip) await writeFile(controlCopy, renderControlFile({ ...cf, urls })).catch((error: unknown) => {
      throw fromSystemError(error, 'cannot write the control file for zsync', controlCopy);
    });
    // cleanup: false: exit-cleanup kills zsync itself on a signal, before removing its folder.
    const child = execa(tool.path, args, { cwd: folder, env: { TMPDIR: folder }, cleanup: false, reject: false, stdin: 'ignore', all: true });
    work.setKill(() => child.kill('SIGKILL'));
    const stallMs = request.transport?.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    let stalled = false;
    let runaway = false;
    // Generous: a few calls per block of the file and of every seed, the way zsync reads, writes
    // and fetches them, and room for small files; a request loop passes it within seconds.
    const seedBytes = (await Promise.all(request.seeds.map((seed) => stat(seed).then((st) => st.size, () => 0)))).reduce((a, b) => a + b, 0);
    const maxCalls = 20_000 + 16 * Math.ceil((cf.length + seedBytes) / cf.blockSize);
    const unwatch = watchChildIo(child.pid, stallMs, () => {
      stalled = true;
      child.kill('SIGKILL');
    }, { maxCalls, onRunaway: () => { runaway = true; child.kill('SIGKILL'); } });
    const run = await child.finally(unwatch);
    const stoppedBy = interruption();
    if (stoppedBy) throw new ZpumpError('E_IO', `interrupted by ${stoppedBy}: zsync stopped, ${request.target} was left unchanged`);
    if (stalled) {
      // Not E_BACKEND: the js engine would wait for the same silent server.
      throw new ZpumpError('E_NETWORK', `${request.dataUrl}: stalled, zsync received nothing for ${stallMs / 1000} s (--stall-timeout): transfer abandoned`, { data: { url: request.dataUrl, stalled: true } });
    }
    if (runaway) {
      throw new ZpumpError('E_BACKEND', `zsync kept asking ${request.dataUrl} for data without end (over ${maxCalls} reads and writes: the server answers ranges with other bytes?); abandoned`, { data: { url: request.dataUrl } });
    }
    if (run.exitCode !== 0 || run.signal) {
      // "download available in ...": not any more, the temporary folder goes with the failure.
      const said = (run.all ?? '').split(/[\r\n]+/).filter((l) => l.trim() && !/^#+|%|download available in/.test(l)).slice(-3).join(' / ');
      if (/No space left on device|Disk quota exceeded/i.test(run.all ?? '')) {
        // The js engine would need the same room: no fallback, the operator has to free space.
        throw new ZpumpError('E_IO', `no space left on the device holding ${request.target} (zsync: ${said}); the target was left unchanged`, { data: { exitCode: run.exitCode } });
      }
      throw new ZpumpError('E_BACKEND', `zsync failed for ${request.target} (${run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`})${said ? `: ${said}` : ''}`, { data: { exitCode: run.exitCode } });
    }
    const used = /used (\d+) local, fetched (\d+)/.exec(String(run.all));
    if (checks.sha1 !== undefined || checks.sha256 !== undefined || request.sha512 !== undefined) {
      const got = await digestFile(out, { sha1: checks.sha1 !== undefined, sha256: checks.sha256 !== undefined, sha512: request.sha512 !== undefined });
      if (checks.sha1 !== undefined && got.sha1 !== checks.sha1) throw new ZpumpError('E_VERIFY', `zsync produced ${request.target} with SHA-1 ${got.sha1}, expected ${checks.sha1}; the target was left unchanged`);
      if (checks.sha256 !== undefined && got.sha256 !== checks.sha256) throw new ZpumpError('E_VERIFY', `zsync produced ${request.target} with SHA-256 ${got.sha256}, the File-Hash says ${checks.sha256}; the target was left unchanged`);
      if (request.sha512 !== undefined && got.sha512 !== request.sha512) {
        throw new ZpumpError('E_VERIFY', `zsync produced ${request.target}, but it does not match the announced sha512 identity; the target was left unchanged`);
      }
    }
    const mtime = request.mtime ?? cf.mtime;
    if (mtime !== undefined) await utimes(out, mtime, mtime);
    await request.beforeCommit?.(out);
    // zsync made its file 0600 (mkstemp); the result gets the mode the js engine would give it.
    try {
      await chmod(out, await modeForReplacing(request.target));
      await rename(out, request.target);
    } catch (error) {
      throw fromSystemError(error, 'cannot move the result into place', request.target);
    }
    return {
      engine: 'zsync',
      target: request.target,
      length: cf.length,
      bytesReused: used ? Math.min(Number(used[1]), cf.length) : 0,
      bytesFetched: used ? Number(used[2]) : 0,
      requests: null,
      verified: checks.sha1 !== undefined || checks.sha256 !== undefined,
      ...servedByOf(String(run.all)),
    };
  } finally {
    await work.remove();
  }
}
