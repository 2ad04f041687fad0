// Byte ranges over HTTP(S) with node's own http/https (its native parser; undici's WASM parser
// cost about 55 MB of resident memory per process, more than the whole rest of a sync):
// multi-range requests (multipart/byteranges), a few in parallel, bounded retries with backoff
// that resume each range after its last delivered byte, redirects followed, and servers that
// ignore Range (200) still served by streaming the body.
// zsync 0.6.2 loops forever on several of these server behaviours; every loop here is bounded.

import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { ZpumpError } from '../errors.js';
import { DEFAULT_STALL_TIMEOUT_MS } from './open.js';
import { reclaimer } from './reclaim.js';
import { redactUrl } from './redact.js';
import { MultipartParser, boundaryFrom, parseContentRange } from './multipart.js';
import type { ByteRange, RangeChunk, RangeSource, ReadRangesOptions, TransferStats } from './types.js';

export interface HttpOptions {
  ca?: string | Buffer;
  connections?: number;
  maxRangesPerRequest?: number;
  /** Silence this long (connecting, before the headers, or between two chunks) abandons the transfer. */
  timeoutMs?: number;
  retries?: number;
  retryBaseMs?: number;
  headers?: Record<string, string>;
}

const USER_AGENT = 'zpump';
const MAX_REDIRECTS = 5;

interface Response {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The connection went silent for the whole timeout (the body then ends in an error). */
  stalled(): boolean;
}

/**
 * A server that sends nothing for the whole timeout. Not retried: a stalling server would cost
 * the timeout again for every retry, and a transfer that moved a few bytes each time could go on
 * for hours. The caller (a subscriber's message retries, a cron job) decides when to try again.
 */
class StallError extends Error {}

/** Keep-alive connections per scheme, at most `connections` each; one timeout for silence. */
class Agents {
  private readonly plain: http.Agent;
  private readonly secure: https.Agent;
  readonly timeout: number;

  constructor(options: HttpOptions) {
    const maxSockets = options.connections ?? 4;
    this.timeout = options.timeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.plain = new http.Agent({ keepAlive: true, maxSockets });
    // A private CA is trusted besides the usual roots (node's `ca` option alone would replace them).
    const ca = options.ca ? [...rootCertificates, options.ca] : undefined;
    this.secure = new https.Agent({ keepAlive: true, maxSockets, ...(ca ? { ca } : {}) });
  }

  request(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    if (!secure && u.protocol !== 'http:') return Promise.reject(new ZpumpError('E_UNSUPPORTED', `cannot follow ${redactUrl(url)}: not http(s)`));
    return new Promise((resolve, reject) => {
      let stalled = false;
      // `timeout` here also covers connecting (setTimeout alone starts only once connected).
      const req = (secure ? https : http).request(u, { method: 'GET', headers, agent: secure ? this.secure : this.plain, timeout: this.timeout, ...(signal ? { signal } : {}) }, (res) => {
        res.on('error', () => undefined); // errors surface through the consumer's iteration
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res, stalled: () => stalled });
      });
      // Silence for `timeout` ms, before the headers or between two chunks, is a dead connection.
      req.setTimeout(this.timeout, () => {
        stalled = true;
        req.destroy(new StallError(`no data for ${this.timeout / 1000} s`));
      });
      req.on('error', reject);
      req.end();
    });
  }

  async close(): Promise<void> {
    this.plain.destroy();
    this.secure.destroy();
  }
}

// Abandon a body without an unhandled 'error' event from the destroyed stream.
function discard(res: Response): void {
  res.body.on('error', () => undefined);
  res.body.destroy();
}

const transient = (status: number): boolean => status >= 500 || status === 408 || status === 429;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * GET with redirects: returns the response whose status is not a redirect, and its URL.
 * Redirects are followed to any http(s) URL, also outside baseUrl's folder or host (mirrors, CDNs,
 * signed object-store URLs rely on that). This gives a hostile party nothing a message could not
 * ask for itself: no operator list narrows baseUrl, so a message may name that URL directly; the
 * bytes fetched are held to the signature and the identity like any others; a password in the URL
 * goes only to the same host (a Location on another host carries no userinfo); and no other scheme
 * (file:, sftp:) is ever followed, so a server cannot make zpump read local files.
 */
async function get(agents: Agents, url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<{ res: Response; url: string }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await agents.request(current, { 'user-agent': USER_AGENT, ...headers }, signal);
    if (![301, 302, 303, 307, 308].includes(res.statusCode)) return { res, url: current };
    discard(res);
    const location = res.headers.location;
    if (typeof location !== 'string' || hop >= MAX_REDIRECTS) throw new ZpumpError('E_HTTP', `${redactUrl(url)}: too many redirects or a redirect without Location`, { data: { url: redactUrl(url) } });
    current = new URL(location, current).href;
  }
}

function httpError(url: string, status: number): ZpumpError {
  const advice = status === 404 ? 'check the URL, or whether the file was removed' : status === 416 ? 'the file on the server is shorter than its signature says: it changed since' : status === 401 || status === 403 ? 'the server refuses access' : 'the server refused the request';
  return new ZpumpError('E_HTTP', `${redactUrl(url)} answered HTTP ${status}: ${advice}`, { data: { url: redactUrl(url), status } });
}

/** Fetch a small document (a .zsync or an announcement) with redirects, retries and a size cap. */
export async function fetchDocument(url: string, options: HttpOptions & { maxBytes?: number } = {}): Promise<{ bytes: Uint8Array; finalUrl: string }> {
  const agent = new Agents(options);
  const maxBytes = options.maxBytes ?? 64 << 20;
  try {
    return await withRetries(url, options, async () => {
      const { res, url: finalUrl } = await get(agent, url, options.headers ?? {});
      if (res.statusCode !== 200) {
        discard(res);
        throw transient(res.statusCode) ? new RetryableError(`HTTP ${res.statusCode}`) : httpError(url, res.statusCode);
      }
      const parts: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > maxBytes) {
            discard(res);
            throw new ZpumpError('E_BAD_INPUT', `${redactUrl(url)} is larger than ${maxBytes} bytes: not a control file or message`);
          }
          parts.push(chunk as Buffer);
        }
      } catch (error) {
        discard(res);
        if (!(error instanceof ZpumpError) && res.stalled()) throw new StallError(`no data for ${agent.timeout / 1000} s`);
        throw error;
      }
      return { bytes: new Uint8Array(Buffer.concat(parts)), finalUrl };
    });
  } finally {
    await agent.close();
  }
}

class RetryableError extends Error {}

async function withRetries<T>(url: string, options: HttpOptions, attempt: (progressed: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const retries = options.retries ?? 4;
  const base = options.retryBaseMs ?? 200;
  let failures = 0;
  for (;;) {
    let progressed = false;
    try {
      return await attempt(() => { progressed = true; });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof ZpumpError) throw error;
      if (error instanceof StallError) {
        throw new ZpumpError('E_NETWORK', `${redactUrl(url)}: stalled, ${error.message} (--stall-timeout): transfer abandoned`, { data: { url: redactUrl(url), stalled: true }, cause: error });
      }
      const code = String((error as { code?: unknown }).code ?? '');
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
        // Retrying cannot fix a certificate the client does not trust.
        throw new ZpumpError('E_NETWORK', `${redactUrl(url)}: TLS certificate not trusted (${code}); for a private CA pass --ca-file or set NODE_EXTRA_CA_CERTS`, { data: { url: redactUrl(url) }, cause: error });
      }
      if (progressed) failures = 0; // a broken transfer that moved forward is not a dead server
      if (++failures > retries) {
        const cause = error instanceof Error ? error.message : String(error);
        throw new ZpumpError('E_NETWORK', `${redactUrl(url)}: giving up after ${retries} retries: ${cause}`, { data: { url: redactUrl(url) }, cause: error });
      }
      await sleep(base * 2 ** (failures - 1));
    }
  }
}

interface Pending { start: number; end: number; next: number }

export function createHttpSource(url: string, options: HttpOptions = {}): RangeSource {
  const agent = new Agents(options);
  let currentUrl = url;
  let ignoresRange = false;
  return {
    location: redactUrl(url),
    async readRanges(ranges: readonly ByteRange[], onChunk: (c: RangeChunk) => void | Promise<void>, opts: ReadRangesOptions = {}): Promise<TransferStats> {
      const stats: TransferStats = { requests: 0, bytesReceived: 0 };
      // The first worker that gives up stops the others: nothing may keep fetching (and retrying)
      // for a transfer that has already failed.
      const stop = new AbortController();
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      const reclaim = reclaimer();
      let delivered = 0;
      let chain: Promise<void> = Promise.resolve();
      // Chunks from parallel requests reach the consumer one at a time, in order of arrival.
      const deliver = (chunk: RangeChunk): Promise<void> => {
        const copy = { offset: chunk.offset, data: chunk.data };
        chain = chain.then(async () => {
          await onChunk(copy);
          delivered += copy.data.length;
          opts.onProgress?.(delivered);
        });
        return chain;
      };
      const perRequest = options.maxRangesPerRequest ?? 32;
      const batches: Pending[][] = [];
      for (let i = 0; i < ranges.length; i += perRequest) batches.push(ranges.slice(i, i + perRequest).map((r) => ({ start: r.start, end: r.end, next: r.start })));
      let nextBatch = 0;
      const worker = async (): Promise<void> => {
        try {
          while (nextBatch < batches.length) {
            const batch = batches[nextBatch++]!;
            await withRetries(currentUrl, options, (progressed) => fetchBatch(batch, progressed), signal);
          }
        } catch (error) {
          if (!stop.signal.aborted) stop.abort(error);
          throw error;
        }
      };

      // Bytes at `offset` go to whichever pending ranges they continue; anything else is dropped.
      const accept = async (batch: Pending[], offset: number, data: Uint8Array, progressed: () => void): Promise<void> => {
        const end = offset + data.length;
        for (const r of batch) {
          if (r.next >= r.end || r.next < offset || r.next >= end) continue;
          const stop = Math.min(end, r.end);
          await deliver({ offset: r.next, data: data.subarray(r.next - offset, stop - offset) });
          r.next = stop;
          progressed();
        }
      };

      const fetchBatch = async (batch: Pending[], progressed: () => void): Promise<void> => {
        for (;;) {
          const open = batch.filter((r) => r.next < r.end);
          if (open.length === 0) return;
          signal.throwIfAborted();
          const headers: Record<string, string> = { ...(options.headers ?? {}) };
          if (!ignoresRange) headers.range = `bytes=${open.map((r) => `${r.next}-${r.end - 1}`).join(',')}`;
          stats.requests++;
          const { res, url: finalUrl } = await get(agent, currentUrl, headers, signal);
          currentUrl = finalUrl;
          if (res.statusCode !== 200 && res.statusCode !== 206) {
            discard(res);
            if (transient(res.statusCode)) throw new RetryableError(`HTTP ${res.statusCode}`);
            throw httpError(currentUrl, res.statusCode);
          }
          const contentType = res.headers['content-type'];
          const boundary = res.statusCode === 206 ? boundaryFrom(Array.isArray(contentType) ? contentType[0] : contentType) : undefined;
          let position = 0;
          let parser: MultipartParser | undefined;
          if (res.statusCode === 200) ignoresRange = true;
          else if (boundary) parser = new MultipartParser(boundary, (offset, bytes) => accept(batch, offset, bytes, progressed));
          else {
            const cr = parseContentRange(res.headers['content-range'] as string | undefined);
            if (!cr) { discard(res); throw new ZpumpError('E_HTTP', `${redactUrl(currentUrl)} sent 206 without a usable Content-Range`); }
            position = cr.start;
          }
          // A hostile or broken server must neither stream without end (bytes outside the ranges
          // are dropped, so nothing else would stop it) nor answer with none of what was asked
          // (the loop would ask again at once, forever): both end this attempt, and the retries
          // of withRetries are bounded.
          const asked = open.reduce((n, r) => n + (r.end - r.next), 0);
          const allowed = asked + 65536 + 1024 * open.length; // multipart boundaries and part headers
          const wanted = (): number => batch.reduce((n, r) => n + (r.end - r.next), 0);
          const before = wanted();
          let received = 0;
          try {
            for await (const chunk of res.body) {
              const data = chunk as Buffer;
              stats.bytesReceived += data.length;
              reclaim(data.length);
              received += data.length;
              if (res.statusCode === 206 && received > allowed) throw new RetryableError(`sent more than the ${asked} bytes of the ranges asked for`);
              if (parser) await parser.push(data);
              else {
                await accept(batch, position, data, progressed);
                position += data.length;
                // A server that ignores Range sends everything: stop once this batch has its bytes.
                if (res.statusCode === 200 && batch.every((r) => r.next >= r.end)) { discard(res); break; }
              }
            }
            parser?.end();
          } catch (error) {
            discard(res);
            if (error instanceof ZpumpError && error.code !== 'E_HTTP') throw error;
            if (res.stalled()) throw new StallError(`no data for ${agent.timeout / 1000} s`);
            throw new RetryableError(error instanceof Error ? error.message : String(error));
          }
          await chain;
          if (wanted() === before) throw new RetryableError(`the answer (HTTP ${res.statusCode}, ${received} bytes) held none of the bytes asked for: the file on the server is shorter, or the server misreads Range`);
        }
      };

      await Promise.all(Array.from({ length: Math.min(options.connections ?? 4, batches.length) }, worker));
      await chain;
      return stats;
    },
    async close() {
      await agent.close();
    },
  };
}
