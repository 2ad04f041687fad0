// The js engine's sync: seeds → matcher → output; missing ranges → transport → verified blocks
// → output; whole-file SHA-1 → rename over the target.

import { BlockIndex } from '../engine/block-index.js';
import { SeedMatcher } from '../engine/matcher.js';
import { createStrongHasher } from '../engine/strong-hash.js';
import { strongHashOf, wholeFileChecks } from '../format/control-file.js';
import { planRanges, rangeBytes } from '../engine/plan.js';
import { ZpumpError } from '../errors.js';
import { openRangeSource } from '../transport/open.js';
import type { SyncRequest, SyncResult } from './types.js';
import { BlockAssembler } from '../local/block-assembler.js';
import { OutputFile } from '../local/output-file.js';
import { scanSeedFile } from '../local/seed-scan.js';

export async function jsSync(request: SyncRequest): Promise<SyncResult> {
  const cf = request.control;
  if (cf.gzip) throw new ZpumpError('E_UNSUPPORTED', 'this control file describes gzip-inside data (Z-Map2), which only the C zsync handles: use --engine zsync');
  const index = new BlockIndex(cf);
  const md4 = await createStrongHasher(strongHashOf(cf));
  const checks = wholeFileChecks(cf);
  const matcher = new SeedMatcher(index, md4);
  const out = await OutputFile.create(request.target, cf.length, cf.blockSize, { sha1: checks.sha1 !== undefined, sha256: checks.sha256 !== undefined, sha512: request.sha512 !== undefined });
  try {
    const shift = new Float64Array(index.count);
    for (const seed of request.seeds) {
      if (matcher.complete) break;
      await scanSeedFile(seed, {
        index, matcher, md4, shift,
        sink: (id, buf, pos) => out.writeBlock(id, buf, pos),
        onProgress: (done, total) => request.onProgress?.('scan', done, total),
      });
    }
    const ranges = planRanges(matcher.known, cf.blockSize, cf.length);
    let requests = 0;
    let bytesFetched = 0;
    if (ranges.length > 0) {
      const source = await openRangeSource(request.dataUrl, request.transport);
      const assembler = new BlockAssembler(index, md4, out, matcher.known, source.location);
      const total = rangeBytes(ranges);
      try {
        const stats = await source.readRanges(ranges, (chunk) => assembler.accept(chunk), {
          onProgress: (done) => request.onProgress?.('fetch', done, total),
        });
        requests = stats.requests;
        bytesFetched = stats.bytesReceived;
      } finally {
        await source.close();
      }
      const missing = matcher.known.indexOf(0);
      if (missing >= 0) throw new ZpumpError('E_NETWORK', `${source.location} did not deliver block ${missing}`, { data: { block: missing } });
    }
    await request.beforeCommit?.(out.path);
    await out.commit({ sha1: checks.sha1, sha256: checks.sha256, sha512Base64: request.sha512 }, request.mtime ?? cf.mtime);
    return { engine: 'js', target: request.target, length: cf.length, bytesReused: cf.length - rangeBytes(ranges), bytesFetched, requests, verified: checks.sha1 !== undefined || checks.sha256 !== undefined };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
