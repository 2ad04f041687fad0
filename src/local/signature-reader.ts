// Reads a file once and produces what .zsync files and an announcement need: length, mtime, the
// whole-file hash (SHA-1, or SHA-256 for spec 0.8), the sha512 identity on request, and block
// records at one or more block sizes (a two-level announcement's fine and coarse signatures come
// from the same buffers: issue 13, one read per file). Constant memory: a few fixed chunks,
// reused. On large files, worker threads hash the blocks (MD4 + weak sum, every level whose block
// size divides a chunk) while this thread reads and feeds the whole-file hashes, and this thread
// hashes the chunks the workers have no room for, so work balances itself and every core is busy.
// A level whose blocks are larger than a chunk is streamed here, in file order.
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
import { writeLevelRecords } from './level-records.js';
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
  const many = await readSignatures(path, { ...options, levels: [{ blockSize: options.blockSize, ...(options.hashLengths ? { hashLengths: options.hashLengths } : {}) }] });
  const level = many.levels[0]!;
  const { levels: _levels, sha512: _sha512, ...whole } = many;
  return { ...whole, blockSize: level.blockSize, hashLengths: level.hashLengths, records: level.records };
}

/** One block size wanted from the read. */
export interface LevelRequest {
  blockSize: number | ((length: number) => number);
  hashLengths?: (length: number, blockSize: number) => HashLengths;
}

export interface LevelRecords {
  blockSize: number;
  hashLengths: HashLengths;
  records: Uint8Array;
}

export interface MultiSignatureOptions extends Omit<SignatureOptions, 'blockSize' | 'hashLengths'> {
  levels: LevelRequest[];
  /** Also the sha512 of the whole file (an announcement's identity), base64. */
  sha512?: boolean;
}

export interface MultiSignature {
  length: number;
  mtime: number;
  sha1?: string;
  sha256?: string;
  /** base64, when asked for. */
  sha512?: string;
  /** In the order asked for. */
  levels: LevelRecords[];
  threads: number;
}

/** Test hook: how many times readSignatures read a file (one read per file is the point). */
export const readCounter = { files: 0, bytes: 0 };

/** Every level's records, the whole-file hash and optionally the sha512, from one read of the file. */
export async function readSignatures(path: string, options: MultiSignatureOptions): Promise<MultiSignature> {
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
    const levels: LevelRecords[] = options.levels.map((request) => {
      const blockSize = typeof request.blockSize === 'function' ? request.blockSize(length) : request.blockSize;
      const hashLengths = request.hashLengths?.(length, blockSize) ?? zsyncmakeHashLengths(length, blockSize);
      return { blockSize, hashLengths, records: new Uint8Array(blockCount(length, blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes)) };
    });
    const fileHash = options.fileHash ?? 'sha1';
    const whole = createHash(fileHash); // the whole-file hash, SHA-1 unless asked otherwise
    const sha512 = options.sha512 ? createHash('sha512') : undefined;
    const workers = options.workers ?? Math.max(1, availableParallelism() - 1);
    const url = workerUrl('hash-worker');
    // Chunks hold whole blocks of every level that fits twice in one; larger blocks are streamed.
    const fitting = levels.map((l) => l.blockSize).filter((bs) => 2 * bs <= CHUNK);
    const unit = fitting.length > 0 ? Math.max(...fitting) : Math.min(...levels.map((l) => l.blockSize));
    // Without a level that fits, a 1 MiB buffer (blocks up to 64 MiB then stream through it).
    const chunk = fitting.length > 0 ? Math.floor(CHUNK / unit) * unit : 1 << 20;
    const job: Job = { fh, path, length, levels, chunk, wholeHashes: sha512 ? [whole, sha512] : [whole], strongHash: options.strongHash ?? 'MD4', onProgress: options.onProgress };
    readCounter.files++;
    let threads = 0;
    const parallel = levels.filter((l) => chunk % l.blockSize === 0 && chunk >= 2 * l.blockSize);
    if (workers > 0 && url && length >= PARALLEL_MIN_BYTES && parallel.length > 0) {
      threads = workers;
      await hashInWorkers(job, parallel, workers, url);
    } else {
      await hashHere(job);
    }
    const after = await fh.stat();
    if (after.size !== length || after.mtimeMs !== st.mtimeMs) {
      throw new ZpumpError('E_IO', `${path} changed while its signature was being made; try again once it is settled`, { data: { path } });
    }
    return { length, mtime: Math.floor(st.mtimeMs / 1000), [fileHash]: whole.digest('hex'), ...(sha512 ? { sha512: sha512.digest('base64') } : {}), levels, threads };
  } finally {
    await fh.close();
  }
}

interface Job {
  fh: FileHandle;
  path: string;
  length: number;
  levels: LevelRecords[];
  chunk: number;
  wholeHashes: Array<ReturnType<typeof createHash>>;
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
  readCounter.bytes += got;
  return got;
}

async function hashHere(job: Job): Promise<void> {
  // Levels whose blocks tile a chunk are done chunk by chunk with one weak-sum pass; larger ones stream.
  const aligned = job.levels.filter((l) => job.chunk % l.blockSize === 0);
  const streamed = await Promise.all(job.levels.filter((l) => !aligned.includes(l)).map(async (l) => new BlockRecordWriter(await createStrongHasher(job.strongHash), l.blockSize, l.hashLengths, l.records, 0)));
  const md4 = await createStrongHasher(job.strongHash);
  const buf = new Uint8Array(job.chunk);
  for (let offset = 0; offset < job.length; ) {
    const n = await readFull(job, buf, offset);
    const view = buf.subarray(0, n);
    for (const h of job.wholeHashes) h.update(view);
    if (aligned.length > 0) writeLevelRecords(md4, view, aligned, aligned.map((l) => l.records), aligned.map((l) => offset / l.blockSize));
    for (const w of streamed) w.update(view);
    offset += n;
    job.onProgress?.(offset, job.length);
  }
  for (const w of streamed) w.finish();
}

async function hashInWorkers(job: Job, parallel: LevelRecords[], count: number, url: URL): Promise<void> {
  const chunk = job.chunk;
  const slots = count * 2 + 1; // per worker one being hashed and one queued; one for this thread
  const shared = new SharedArrayBuffer(slots * chunk);
  // Small heaps: a worker allocates only a few small arrays per chunk, and RSS must stay low.
  const pool = Array.from({ length: count }, () => new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } }));
  const inFlight = new Array<number>(count).fill(0);
  const freeSlots = Array.from({ length: slots }, (_, i) => i);
  const pending = new Map<number, { slot: number; worker: number; offset: number }>();
  const recLen = (l: LevelRecords): number => l.hashLengths.rsumBytes + l.hashLengths.checksumBytes;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => { const w = wake; wake = undefined; w?.(); };

  pool.forEach((worker, w) => {
    worker.on('message', (result: HashJobResult) => {
      const p = pending.get(result.id)!;
      pending.delete(result.id);
      parallel.forEach((l, i) => l.records.set(result.records[i]!, (p.offset / l.blockSize) * recLen(l)));
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

  // Levels of blocks too large for a chunk follow the file here, in order, across chunks.
  const streamed = await Promise.all(
    job.levels.filter((l) => !parallel.includes(l)).map(async (l) => new BlockRecordWriter(await createStrongHasher(job.strongHash), l.blockSize, l.hashLengths, l.records, 0)),
  );
  const here = await createStrongHasher(job.strongHash);
  try {
    let id = 0;
    for (let offset = 0; offset < job.length; ) {
      await waitFor(() => freeSlots.length > 0);
      const slot = freeSlots.pop()!;
      const view = new Uint8Array(shared, slot * chunk, chunk);
      const n = await readFull(job, view, offset);
      const data = view.subarray(0, n);
      for (const h of job.wholeHashes) h.update(data);
      for (const w of streamed) w.update(data);
      const w = inFlight.indexOf(Math.min(...inFlight));
      if (inFlight[w]! >= 2) {
        // Every worker is busy with a queue: hash this chunk here rather than wait.
        writeLevelRecords(here, data, parallel, parallel.map((l) => l.records), parallel.map((l) => offset / l.blockSize));
        freeSlots.push(slot);
        offset += n;
        job.onProgress?.(offset, job.length);
        continue;
      }
      inFlight[w]!++;
      pending.set(id, { slot, worker: w, offset });
      const message: HashJob = { shared, byteOffset: slot * chunk, length: n, levels: parallel.map((l) => ({ blockSize: l.blockSize, hashLengths: l.hashLengths })), strongHash: job.strongHash, id: id++ };
      pool[w]!.postMessage(message);
      offset += n;
      job.onProgress?.(offset, job.length);
    }
    for (const writer of streamed) writer.finish();
    await waitFor(() => pending.size === 0);
  } finally {
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}
