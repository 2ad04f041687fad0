// A seed scanned on every core with the same result as one thread. The seed is cut into parts;
// the main thread scans a part itself whenever no worker has it, and worker threads scan the
// following ones speculatively, each from a snapshot of the blocks found so far; the main thread
// replays their decisions in file order. A decision stands when the one-thread
// scan would have made it too: it reaches the same place in the same state, and every block the
// worker took is still missing (the worker knew a subset of what this thread knows, so it tested
// every candidate this thread would and more). Where that fails (a block found in an earlier part
// again, or the scan entering a part mid-jump) this thread scans on its own until it meets the
// worker's path again, in the same state, with every block the worker took in between found.
// The output file gets the workers' blocks directly; blocks a replay rejects are still correct
// bytes (they passed the checksums) or are fetched over them later.

import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { BlockIndex } from '../engine/block-index.js';
import type { SeedMatcher } from '../engine/matcher.js';
import { ZpumpError, fromSystemError, type ErrorCode } from '../errors.js';
import { strongHashOf, type ControlFile } from '../format/control-file.js';
import type { ScanJob, ScanJobResult, ScanWorkerSetup } from './scan-worker.js';
import type { SeedScanner } from './seed-scan.js';
import { workerUrl } from './worker-url.js';

const MIN_PART = 16 << 20;
const MAX_BLOCK = 1 << 20; // parts and the fallback buffer stay small next to the blocks
// The RSS the workers may add (peak RSS <= 96 MB: a sync on one thread needs up to ~70 MB, ~85 MB
// with 524 288 blocks). A thread of its own costs ~10 MB before it holds anything, so the main
// thread scans too instead of only replaying: one worker fewer for the same cores.
const WORKERS_RSS = 28 << 20;
const WORKER_RSS = 10 << 20;

/** Work done, for tests (counted, never timed). */
export interface ParallelWork {
  parts: number;
  /** Worker decisions taken over as they were. */
  adopted: number;
  /** Seed bytes this thread scanned itself where a part's start or a decision did not line up. */
  fallbackBytes: number;
  /** Parts no worker had, which this thread scanned itself. */
  ownParts: number;
}

export class ParallelScan {
  readonly work: ParallelWork = { parts: 0, adopted: 0, fallbackBytes: 0, ownParts: 0 };
  private readonly idle: Worker[] = [];
  private readonly workers: Worker[] = [];

  // Threads start with each seed worth cutting: a small sync never pays for them.
  private constructor(
    private readonly spawn: () => Worker,
    private readonly release: () => void,
    private readonly count: number,
    private readonly partBytes: number | undefined,
  ) {}

  /**
   * Worker threads for a sync writing to `outPath`, a new file of the target's length that reads as
   * zeros (workers skip blocks of zeros); undefined when one thread is asked for. `threads`
   * counts this one: threads - 1 workers at most.
   * `partBytes` (tests) fixes the part size, to put many part boundaries in a small seed.
   */
  static start(cf: ControlFile, index: BlockIndex, outPath: string, threads: number, partBytes?: number): ParallelScan | undefined {
    const url = workerUrl('scan-worker');
    // Workers read this thread's index (shared memory); each holds only its own chain links and
    // known set (~6 bytes a block, a filter of its own only if it rebuilds one) on top of ~10 MB
    // for the thread itself: as many as fit in WORKERS_RSS.
    const count = Math.min(threads - 1, Math.floor(WORKERS_RSS / (WORKER_RSS + 6 * index.count)));
    if (count < 1 || !url || index.blockSize > MAX_BLOCK) return undefined;
    // The records' copy in shared memory lives while threads do (4 MiB at 524 288 blocks: not
    // through the fetch that follows the scan).
    let setup: ScanWorkerSetup | undefined;
    const spawn = (): Worker => {
      if (!setup) {
        const records = new SharedArrayBuffer(cf.records.length);
        new Uint8Array(records).set(cf.records);
        setup = { index: index.share(records, cf.hashLengths), strongHash: strongHashOf(cf), outPath };
      }
      // A small young generation: the scan allocates little, and each MB here is RSS per thread.
      return new Worker(url, { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 } });
    };
    return new ParallelScan(spawn, () => { setup = undefined; }, count, partBytes);
  }

  /** Workers close their handle on the output file, then exit. */
  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    this.idle.length = 0;
    this.release();
    await Promise.all(workers.map(async (w) => {
      const exited = new Promise((resolve) => w.once('exit', resolve));
      w.postMessage('close');
      await exited;
    }));
  }

  /** Scan a seed on the workers; false if it is too small to be worth cutting. */
  async scan(fh: FileHandle, path: string, size: number, s: SeedScanner): Promise<boolean> {
    const ctx = s.index.seqMatches * s.index.blockSize;
    const partSize = this.partBytes ?? Math.max(MIN_PART, 8 * ctx, Math.ceil(size / ((this.count + 1) * 4)));
    if (size < 2 * partSize || partSize < 2 * ctx) return false;
    while (this.workers.length < this.count) {
      const w = this.spawn();
      this.workers.push(w);
      this.idle.push(w);
    }
    const parts: Array<{ from: number; to: number }> = [];
    for (let from = 0; from < size; from += partSize) parts.push({ from, to: Math.min(size, from + partSize) });
    const results = new Map<number, ScanJobResult>();
    let wake: (() => void) | undefined;
    const taken = new Uint8Array(parts.length); // handed to a worker or scanned here
    let current = 0; // the part this thread is at
    let failed: unknown;
    // Idle workers take the first parts not taken from `first` on, with what was found so far.
    const dispatch = (first: number): void => {
      let part = first;
      while (this.idle.length > 0 && !s.matcher.complete) {
        while (part < parts.length && taken[part]) part++;
        if (part >= parts.length) return;
        taken[part] = 1;
        const worker = this.idle.pop()!;
        const job: ScanJob = { part, path, size, ...parts[part]!, known: s.matcher.known.slice(), ownMiss: s.matcher.ownMiss !== undefined };
        // A worker done early takes a part further on at once, leaving the next one to this
        // thread: this thread would otherwise wait for it there (when the worker is slower) or
        // the worker idle until this thread's part ends (when it is faster).
        const onMessage = (r: ScanJobResult): void => { done(); results.set(r.part, r); this.idle.push(worker); dispatch(current + 2); wake?.(); };
        const onError = (error: Error): void => { done(); failed = error; wake?.(); };
        const done = (): void => { worker.off('message', onMessage); worker.off('error', onError); };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.postMessage(job, [job.known.buffer as ArrayBuffer]);
      }
    };
    const merger = new Merger(fh, path, size, s, this.work);
    for (let part = 0; part < parts.length && !s.matcher.complete; part++) {
      const { from, to } = parts[part]!;
      current = part;
      if (!taken[part]) {
        // No worker has it: this thread scans it (its scan is the one-thread scan), and idle
        // workers take the parts after it meanwhile.
        taken[part] = 1;
        dispatch(part + 1);
        await merger.scanOwn(to);
        this.work.ownParts++;
      } else {
        while (!results.has(part) && failed === undefined) await new Promise<void>((resolve) => { wake = resolve; });
        if (failed !== undefined) throw new ZpumpError('E_IO', `seed scan thread failed: ${(failed as Error).message}`, { cause: failed });
        const r = results.get(part)!;
        results.delete(part);
        if (r.error !== undefined) throw new ZpumpError((r.code ?? 'E_IO') as ErrorCode, r.error);
        const own = s.matcher.ownMiss;
        if (own && r.ownMiss) for (let k = 0; k < own.length; k++) own[k]! |= r.ownMiss[k]!;
        await merger.merge(from, to, r.log);
      }
      this.work.parts++;
      s.onProgress?.(Math.min(size, to), size);
    }
    // Parts still running after the target completed: let them finish before the file moves on.
    while (this.idle.length < this.workers.length && failed === undefined) await new Promise<void>((resolve) => { wake = resolve; });
    // The threads go with the seed (the next one worth cutting starts new ones): what follows a
    // scan (likely offsets, the fetch) must not find their RSS on top of its own.
    await this.close();
    return true;
  }
}

/** The one-thread scan's state carried from part to part, and its replay of the workers' logs. */
class Merger {
  private x = 0; // where the one-thread scan stands
  private readonly matcher: SeedMatcher;
  private readonly buf: Uint8Array;
  private readonly chunk: number;
  private readonly ctx: number;

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    private readonly size: number,
    private readonly s: SeedScanner,
    private readonly work: ParallelWork,
  ) {
    this.matcher = s.matcher;
    this.ctx = s.index.seqMatches * s.index.blockSize;
    this.chunk = Math.max(1 << 20, 2 * this.ctx);
    this.buf = new Uint8Array(this.chunk + this.ctx);
  }

  async merge(from: number, to: number, log: Float64Array): Promise<void> {
    const m = this.matcher;
    const known = m.known;
    const N = this.s.index.count;
    const seq2 = this.s.index.seqMatches === 2;
    const pending: number[] = []; // blocks the worker took where this thread did not follow it
    let i = 0;
    let land = from; // the worker's position after its last decision before x
    let landNext = -1; // ... and its continuation candidate there
    while (this.x < to && !m.complete) {
      // The worker's decisions before x were not followed: what they took must be found here too.
      while (i < log.length && log[i + 1]! < this.x) {
        const n = log[i + 5]!;
        for (let k = 0; k < n; k++) pending.push(log[i + 6 + 2 * k]!);
        land = log[i + 1]! + log[i + 2]!;
        landNext = log[i + 4]!;
        i += 6 + 2 * n;
      }
      const workerNext = land === this.x ? landNext : -1;
      const onPath = land <= this.x;
      let inStep = onPath && workerNext === m.pending;
      if (inStep) {
        let w = 0;
        for (const id of pending) if (!known[id]) pending[w++] = id;
        pending.length = w;
        inStep = w === 0;
      }
      if (!inStep) {
        const nextDecision = i < log.length ? log[i + 1]! : Infinity;
        const limit = Math.min(to, Math.max(this.x + 1, Math.min(nextDecision, this.x + this.chunk)));
        await this.scanHere(limit);
        continue;
      }
      // In step: take the worker's decisions while each is the one this thread would make.
      let diverged = false;
      while (i < log.length) {
        const kind = log[i]!;
        const at = log[i + 1]!;
        const jump = log[i + 2]!;
        const after = log[i + 3]!;
        const nextAfter = log[i + 4]!;
        const n = log[i + 5]!;
        // Between x and `at` both rolled; a continuation this thread had pending at x failed
        // there for the worker, so it fails here too.
        if (at > this.x) m.pending = -1;
        this.x = at;
        let stands = kind === 1 || m.pending === log[i + 6];
        for (let k = 0; k < n && stands; k++) if (known[log[i + 6 + 2 * k]!]) stands = false;
        if (!stands) {
          for (let k = 0; k < n; k++) pending.push(log[i + 6 + 2 * k]!);
          land = at + jump;
          landNext = nextAfter;
          i += 6 + 2 * n;
          diverged = true;
          break;
        }
        for (let k = 0; k < n; k++) {
          const id = log[i + 6 + 2 * k]!;
          m.markKnown(id);
          this.s.shift[id] = log[i + 7 + 2 * k]! - id * this.s.index.blockSize;
        }
        this.work.adopted++;
        const next = (kind === 0 || seq2) && after < N && !known[after] ? after : -1;
        this.x = at + jump;
        m.pending = next;
        land = this.x;
        landNext = nextAfter;
        i += 6 + 2 * n;
        if (next !== nextAfter) { diverged = true; break; }
      }
      if (!diverged && this.x < to) {
        // The rest of the part: the worker rolled on without a match; so does this thread.
        this.x = to;
        m.pending = -1;
      }
    }
  }

  /** A part no worker scanned: this thread scans on from where it stands, up to `to`. */
  async scanOwn(to: number): Promise<void> {
    while (this.x < to && !this.matcher.complete) await this.scanHere(Math.min(to, this.x + this.chunk), false);
  }

  // Scan window starts [x, limit) on this thread (limit - x <= chunk).
  private async scanHere(limit: number, fallback = true): Promise<void> {
    const from = this.x;
    const end = Math.min(this.size, limit + this.ctx);
    let len = 0;
    while (from + len < end) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.fh.read(this.buf, len, end - from - len, from + len));
      } catch (error) {
        throw fromSystemError(error, 'cannot read the seed', this.path);
      }
      if (n === 0) break;
      len += n;
    }
    this.buf.fill(0, len, limit - from + this.ctx);
    const B = this.s.index.blockSize;
    const buf = this.buf;
    const stop = this.matcher.scan(buf, 0, limit - from, (id, pos) => {
      this.s.shift[id] = from + pos - id * B;
      this.s.sink(id, buf, pos);
    }, from);
    if (fallback) this.work.fallbackBytes += stop;
    this.x = from + stop;
  }
}
