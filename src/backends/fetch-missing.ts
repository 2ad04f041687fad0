// The js engine's download phase over a control file's URL: lines. Each URL is tried in turn
// for the blocks still missing, as zsync does (it picks them at random; we keep the file's
// order, so the first mirror listed is preferred). A URL that answers 404, refuses the connection,
// stalls, or sends data that does not match the signature is left for the next one; blocks
// already received from it are kept. Local failures (disk, a bug) stop at once.

import type { BlockIndex } from '../engine/block-index.js';
import { planRanges, rangeBytes } from '../engine/plan.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import { isZpumpError, ZpumpError, type ErrorCode } from '../errors.js';
import { BlockAssembler } from '../local/block-assembler.js';
import type { OutputFile } from '../local/output-file.js';
import { openRangeSource, type OpenOptions } from '../transport/open.js';
import { redactUrl } from '../transport/redact.js';

export interface FailedUrl {
  url: string;
  reason: string;
}

export interface FetchOutcome {
  requests: number;
  bytesFetched: number;
  /** The URL that delivered the last missing blocks. */
  servedBy: string;
  /** URLs tried before it, with what went wrong. */
  failedUrls: FailedUrl[];
}

export interface FetchJob {
  urls: string[];
  index: BlockIndex;
  hasher: StrongHasher;
  out: Pick<OutputFile, 'writeBlock'>;
  known: Uint8Array;
  transport?: OpenOptions;
  onProgress?: (done: number, total: number) => void;
}

// What a different mirror can cure: the server's answer, the network, the data it holds.
const NEXT_URL_CURES = new Set<ErrorCode>(['E_HTTP', 'E_NETWORK', 'E_VERIFY', 'E_BAD_INPUT', 'E_UNSUPPORTED']);

export async function fetchMissing(job: FetchJob): Promise<FetchOutcome> {
  const { index, known } = job;
  const failedUrls: FailedUrl[] = [];
  let requests = 0;
  let bytesFetched = 0;
  let lastError: unknown;
  for (const url of job.urls) {
    const ranges = planRanges(known, index.blockSize, index.length);
    try {
      const source = await openRangeSource(url, job.transport);
      try {
        const assembler = new BlockAssembler(index, job.hasher, job.out, known, source.location);
        const total = rangeBytes(ranges);
        const stats = await source.readRanges(ranges, (chunk) => assembler.accept(chunk), { onProgress: (done) => job.onProgress?.(done, total) });
        requests += stats.requests;
        bytesFetched += stats.bytesReceived;
      } finally {
        await source.close();
      }
      const missing = known.indexOf(0);
      if (missing >= 0) throw new ZpumpError('E_NETWORK', `${source.location} did not deliver block ${missing}`, { data: { block: missing } });
      return { requests, bytesFetched, servedBy: url, failedUrls };
    } catch (error) {
      if (!isZpumpError(error) || !NEXT_URL_CURES.has(error.code)) throw error;
      lastError = error;
      failedUrls.push({ url: redactUrl(url), reason: error.message });
    }
  }
  if (failedUrls.length === 1) throw lastError;
  const code = isZpumpError(lastError) ? lastError.code : 'E_NETWORK';
  const tried = failedUrls.map((f) => `${f.url}: ${f.reason}`).join('; ');
  throw new ZpumpError(code, `none of the control file's ${failedUrls.length} URLs delivered the data (${tried})`, { data: { failedUrls }, cause: lastError });
}
