// The zsync client as a sync backend. It gets a private copy of the control file whose URL is the
// absolute data URL (so relative URLs and --url behave the same as in the js engine), writes into
// a temporary file beside the target, and we verify the SHA-1 ourselves before renaming.

import { rm, rename, utimes, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ZpumpError } from '../errors.js';
import { renderControlFile } from '../format/control-file.js';
import { tempPathFor } from '../local/atomic-file.js';
import { digestFile } from '../local/file-digest.js';
import { requireTool } from './locate.js';
import type { SyncRequest, SyncResult } from './types.js';

export function zsyncCanFetch(dataUrl: string): boolean {
  return dataUrl.startsWith('http://');
}

export async function zsyncClientSync(request: SyncRequest): Promise<SyncResult> {
  const tool = await requireTool('zsync');
  const cf = request.control;
  if (!zsyncCanFetch(request.dataUrl)) {
    throw new ZpumpError('E_UNSUPPORTED', `zsync 0.6.2 fetches plain http:// only, not ${request.dataUrl}; use --engine js (or auto)`);
  }
  if (cf.gzip) throw new ZpumpError('E_UNSUPPORTED', 'gzip-inside control files are not handled through zpump sync yet; run zsync directly');
  if (cf.length === 0) throw new ZpumpError('E_BACKEND', 'zsync 0.6.2 refuses control files of empty files (Length 0)');
  const out = tempPathFor(request.target);
  const controlCopy = `${out}.zsync`;
  await writeFile(controlCopy, renderControlFile({ ...cf, urls: [request.dataUrl] }));
  const { execa } = await import('execa');
  const args = ['-o', out];
  for (const seed of request.seeds) args.push('-i', seed);
  args.push(controlCopy);
  try {
    // zsync makes its working file in the current directory: the target's, so the rename is local.
    const run = await execa(tool.path, args, { cwd: dirname(request.target) || '.', reject: false, stdin: 'ignore', all: true });
    if (run.exitCode !== 0 || run.signal) {
      const said = (run.all ?? '').split(/[\r\n]+/).filter((l) => l.trim() && !/^#+|%/.test(l)).slice(-3).join(' / ');
      throw new ZpumpError('E_BACKEND', `zsync failed for ${request.target} (${run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`})${said ? `: ${said}` : ''}`, { data: { exitCode: run.exitCode } });
    }
    const used = /used (\d+) local, fetched (\d+)/.exec(String(run.all));
    if (cf.sha1 !== undefined || request.sha512 !== undefined) {
      const got = await digestFile(out, { sha1: cf.sha1 !== undefined, sha512: request.sha512 !== undefined });
      if (cf.sha1 !== undefined && got.sha1 !== cf.sha1) throw new ZpumpError('E_VERIFY', `zsync produced ${request.target} with SHA-1 ${got.sha1}, expected ${cf.sha1}; the target was left unchanged`);
      if (request.sha512 !== undefined && got.sha512 !== request.sha512) {
        throw new ZpumpError('E_VERIFY', `zsync produced ${request.target}, but it does not match the announced sha512 identity; the target was left unchanged`);
      }
    }
    const mtime = request.mtime ?? cf.mtime;
    if (mtime !== undefined) await utimes(out, mtime, mtime);
    await rename(out, request.target);
    return {
      engine: 'zsync',
      target: request.target,
      length: cf.length,
      bytesReused: used ? Math.min(Number(used[1]), cf.length) : 0,
      bytesFetched: used ? Number(used[2]) : 0,
      requests: null,
      verified: cf.sha1 !== undefined,
    };
  } finally {
    await Promise.all([out, `${out}.part`, `${out}.zs-old`, controlCopy].map((p) => rm(p, { force: true })));
  }
}
