// The js engine's sync: seeds → matcher → output; missing ranges → transport → verified blocks
// → output; whole-file SHA-1 → rename over the target.

import { BlockIndex } from '../engine/block-index.js';
import { SeedMatcher } from '../engine/matcher.js';
import { createStrongHasher } from '../engine/strong-hash.js';
import { strongHashOf, wholeFileChecks } from '../format/control-file.js';
import { planRanges, rangeBytes } from '../engine/plan.js';
import { ZpumpError } from '../errors.js';
import type { SyncRequest, SyncResult } from './types.js';
import { fetchMissing } from './fetch-missing.js';
import { OutputFile } from '../local/output-file.js';
import { finalCheck } from '../local/final-check.js';
import { scanSeedFile } from '../local/seed-scan.js';
import { ParallelScan } from '../local/parallel-scan.js';
import { availableParallelism } from 'node:os';

export async function jsSync(request: SyncRequest): Promise<SyncResult> {
  const cf = request.control;
  if (cf.gzip) throw new ZpumpError('E_UNSUPPORTED', 'this control file describes gzip-inside data (Z-Map2), which only the zsync 0.6.x client handles (not the js engine, not zsync 0.7+): install zsync 0.6.2 (Debian/Ubuntu: apt-get install zsync) and use --engine zsync or auto');
  const index = new BlockIndex(cf);
  const md4 = await createStrongHasher(strongHashOf(cf));
  const checks = wholeFileChecks(cf);
  const matcher = new SeedMatcher(index, md4);
  const check = finalCheck(checks, request.sha512, request.md5InBeforeCommit);
  const out = await OutputFile.create(request.target, cf.length, cf.blockSize, check.hashing);
  try {
    const shift = new Float64Array(index.count);
    const parallel = request.seeds.length > 0 ? ParallelScan.start(cf, index, out.path, request.threads ?? availableParallelism()) : undefined;
    try {
      for (const seed of request.seeds) {
        if (matcher.complete) break;
        await scanSeedFile(seed, {
          index, matcher, md4, shift, parallel, outputStartsZero: true,
          sink: (id, buf, pos) => out.writeBlock(id, buf, pos),
          onProgress: (done, total) => request.onProgress?.('scan', done, total),
        });
      }
    } finally {
      await parallel?.close();
    }
    const ranges = planRanges(matcher.known, cf.blockSize, cf.length);
    const fetched = ranges.length === 0 ? undefined : await fetchMissing({
      urls: request.dataUrls ?? [request.dataUrl], index, hasher: md4, out, known: matcher.known, transport: request.transport,
      onProgress: (done, total) => request.onProgress?.('fetch', done, total),
    });
    await request.beforeCommit?.(out.path);
    await out.commit(check.expected, request.mtime ?? cf.mtime);
    return { engine: 'js', target: request.target, length: cf.length, bytesReused: cf.length - rangeBytes(ranges), bytesFetched: fetched?.bytesFetched ?? 0, requests: fetched?.requests ?? 0, verified: check.verified, ...(fetched ? { servedBy: fetched.servedBy, failedUrls: fetched.failedUrls } : {}) };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
