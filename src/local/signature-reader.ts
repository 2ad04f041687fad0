// Reads a file once and produces what a .zsync needs: length, mtime, SHA-1 and block records.
// Constant memory: a few fixed chunks, reused. On large files, worker threads hash the blocks
// (MD4 + weak sum) while this thread reads and feeds the SHA-1, and this thread hashes the
// chunks the workers have no room for — so work balances itself and every core is busy.
// One worker fewer than cores: each worker costs ~10 MB of RSS, and this thread works too.

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BlockRecordWriter } from '../engine/block-records.js';
import { createStrongHasher, type StrongHashName } from '../engine/strong-hash.js';
import { ZpumpError, fromSystemError } from '../errors.js';
import { blockCount, zsyncmakeHashLengths, type HashLengths } from '../format/hash-lengths.js';
import type { HashJob, HashJobResult } from './hash-worker.js';
import { workerUrl } from './worker-url.js';

export interface FileSignature {
  length: number;
  mtime: number; // whole seconds since the epoch, as zsyncmake records it
  sha1?: string; // hex, unless options.fileHash asked for SHA-256
  sha256?: string;
  blockSize: number;
  hashLengths: HashLengths;
  records: Uint8Array;
  threads: number; // hashing threads used (0 = this thread only)
}

export interface SignatureOptions {
  /** A block size, or a rule that picks one from the file's length. */
  blockSize: number | ((length: number) => number);
  /** Worker threads for block hashing; default: one per core but one. 0 = hash on this thread. */
  workers?: number;
  onProgress?: (bytesRead: number, total: number) => void;
  /** Spec 0.8 signatures: the block hash, the whole-file hash and the Hash-Lengths rule (default: zsyncmake 0.6.2's). */
  strongHash?: StrongHashName;
  fileHash?: 'sha1' | 'sha256';
  hashLengths?: (length: number, blockSize: number) => HashLengths;
}

const CHUNK = 4 << 20;
const PARALLEL_MIN_BYTES = 32 << 20;

export async function readSignature(path: string, options: SignatureOptions): Promise<FileSignature> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the file', path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ZpumpError('E_BAD_INPUT', `${path} is not a regular file`, { data: { path } });
    const length = st.size;
    const blockSize = typeof options.blockSize === 'function' ? options.blockSize(length) : options.blockSize;
    const hashLengths = options.hashLengths?.(length, blockSize) ?? zsyncmakeHashLengths(length, blockSize);
    const records = new Uint8Array(blockCount(length, blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes));
    const fileHash = options.fileHash ?? 'sha1';
    const sha1 = createHash(fileHash); // the whole-file hash, SHA-1 unless asked otherwise
    const workers = options.workers ?? Math.max(1, availableParallelism() - 1);
    const url = workerUrl('hash-worker');
    const chunk = Math.floor(CHUNK / blockSize) * blockSize;
    const job: Job = { fh, path, length, blockSize, hashLengths, records, sha1, strongHash: options.strongHash ?? 'MD4', onProgress: options.onProgress };
    let threads = 0;
    if (workers > 0 && url && length >= PARALLEL_MIN_BYTES && chunk >= 2 * blockSize) {
      threads = workers;
      await hashInWorkers(job, chunk, workers, url);
    } else {
      await hashHere(job);
    }
    const after = await fh.stat();
    if (after.size !== length || after.mtimeMs !== st.mtimeMs) {
      throw new ZpumpError('E_IO', `${path} changed while its signature was being made; try again once it is settled`, { data: { path } });
    }
    return { length, mtime: Math.floor(st.mtimeMs / 1000), [fileHash]: sha1.digest('hex'), blockSize, hashLengths, records, threads };
  } finally {
    await fh.close();
  }
}

interface Job {
  fh: FileHandle;
  path: string;
  length: number;
  blockSize: number;
  hashLengths: HashLengths;
  records: Uint8Array;
  sha1: ReturnType<typeof createHash>;
  strongHash: StrongHashName;
  onProgress: SignatureOptions['onProgress'];
}

// Fill `buf` from `offset` unless the file ends first; a short count means the file shrank.
async function readFull(job: Job, buf: Uint8Array, offset: number): Promise<number> {
  const want = Math.min(buf.length, job.length - offset);
  let got = 0;
  while (got < want) {
    let n: number;
    try {
      ({ bytesRead: n } = await job.fh.read(buf, got, want - got, offset + got));
    } catch (error) {
      throw fromSystemError(error, 'read failed', job.path);
    }
    if (n === 0) throw new ZpumpError('E_IO', `${job.path} shrank while its signature was being made`, { data: { path: job.path } });
    got += n;
  }
  return got;
}

async function hashHere(job: Job): Promise<void> {
  const md4 = await createStrongHasher(job.strongHash);
  const writer = new BlockRecordWriter(md4, job.blockSize, job.hashLengths, job.records, 0);
  const buf = new Uint8Array(Math.max(1 << 20, Math.min(CHUNK, Math.floor(CHUNK / job.blockSize) * job.blockSize)));
  for (let offset = 0; offset < job.length; ) {
    const n = await readFull(job, buf, offset);
    const view = buf.subarray(0, n);
    job.sha1.update(view);
    writer.update(view);
    offset += n;
    job.onProgress?.(offset, job.length);
  }
  writer.finish();
}

async function hashInWorkers(job: Job, chunk: number, count: number, url: URL): Promise<void> {
  const slots = count * 2 + 1; // per worker one being hashed and one queued; one for this thread
  const shared = new SharedArrayBuffer(slots * chunk);
  const recLen = job.hashLengths.rsumBytes + job.hashLengths.checksumBytes;
  // Small heaps: a worker allocates only a few small arrays per chunk, and RSS must stay low.
  const pool = Array.from({ length: count }, () => new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } }));
  const inFlight = new Array<number>(count).fill(0);
  const freeSlots = Array.from({ length: slots }, (_, i) => i);
  const pending = new Map<number, { slot: number; worker: number; firstRecord: number }>();
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => { const w = wake; wake = undefined; w?.(); };

  pool.forEach((worker, w) => {
    worker.on('message', (result: HashJobResult) => {
      const p = pending.get(result.id)!;
      pending.delete(result.id);
      job.records.set(result.records, p.firstRecord * recLen);
      freeSlots.push(p.slot);
      inFlight[w]!--;
      notify();
    });
    worker.on('error', (error) => { failure ??= error; notify(); });
  });
  const waitFor = async (ready: () => boolean): Promise<void> => {
    while (!ready() && failure === undefined) await new Promise<void>((resolve) => { wake = resolve; });
    if (failure !== undefined) throw new ZpumpError('E_INTERNAL', `a hashing worker failed: ${String(failure)}`, { cause: failure });
  };

  const md4 = await createStrongHasher(job.strongHash);
  try {
    let id = 0;
    for (let offset = 0; offset < job.length; ) {
      await waitFor(() => freeSlots.length > 0);
      const slot = freeSlots.pop()!;
      const view = new Uint8Array(shared, slot * chunk, chunk);
      const n = await readFull(job, view, offset);
      job.sha1.update(view.subarray(0, n));
      const w = inFlight.indexOf(Math.min(...inFlight));
      if (inFlight[w]! >= 2) {
        // Every worker is busy with a queue: hash this chunk here rather than wait.
        const writer = new BlockRecordWriter(md4, job.blockSize, job.hashLengths, job.records, offset / job.blockSize);
        writer.update(view.subarray(0, n));
        writer.finish();
        freeSlots.push(slot);
        offset += n;
        job.onProgress?.(offset, job.length);
        continue;
      }
      inFlight[w]!++;
      pending.set(id, { slot, worker: w, firstRecord: offset / job.blockSize });
      const message: HashJob = { shared, byteOffset: slot * chunk, length: n, blockSize: job.blockSize, hashLengths: job.hashLengths, strongHash: job.strongHash, firstRecord: offset / job.blockSize, id: id++ };
      pool[w]!.postMessage(message);
      offset += n;
      job.onProgress?.(offset, job.length);
    }
    await waitFor(() => pending.size === 0);
  } finally {
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}
