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
import { BlockRecordWriter } from '../engine/block-records.js';
import { createStrongHasher, type StrongHashName } from '../engine/strong-hash.js';
import { ZpumpError, fromSystemError } from '../errors.js';
import { blockCount, zsyncmakeHashLengths, type HashLengths } from '../format/hash-lengths.js';
import type { HashJob, HashJobResult } from './hash-worker.js';
import { writeLevelRecords } from './level-records.js';
import type { Md4 } from '../engine/md4.js';
import { workerUrl } from './worker-url.js';
import { acquireHashWorkers, giveSharedMemory, releaseHashWorkers, takeSharedMemory } from './hash-pool.js';

export interface FileSignature {
  length: number;
  mtime: number; // whole seconds since the epoch, as zsyncmake records it
  sha1?: string; // hex, unless options.fileHash asked for SHA-256
  sha256?: string;
  blockSize: number;
  hashLengths: HashLengths;
  records: Uint8Array;
  threads: number; // hashing threads used (0 = this thread only)
  /** base64, when options.sha512 asked for it (an announcement's identity from the same read). */
  sha512?: string;
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
  /** Also the sha512 of the whole file, base64. */
  sha512?: boolean;
}

const CHUNK = 4 << 20;
const PARALLEL_MIN_BYTES = 32 << 20;

export async function readSignature(path: string, options: SignatureOptions): Promise<FileSignature> {
  const many = await readSignatures(path, { ...options, levels: [{ blockSize: options.blockSize, ...(options.hashLengths ? { hashLengths: options.hashLengths } : {}) }] });
  const level = many.levels[0]!;
  const { levels: _levels, ...whole } = many;
  return { ...whole, blockSize: level.blockSize, hashLengths: level.hashLengths, records: level.records };
}

/** One block size wanted from the read. */
export interface LevelRequest {
  blockSize: number | ((length: number) => number);
  hashLengths?: (length: number, blockSize: number) => HashLengths;
  /**
   * Take the records as they are made (`at`: byte offset in the level's record area) instead of
   * holding them all: a 64 GiB file has 128 MB of fine records. Called in any order.
   */
  sink?: (records: Uint8Array, at: number) => void;
}

export interface LevelRecords {
  blockSize: number;
  hashLengths: HashLengths;
  /** Empty when the level had a sink: the records went there. */
  records: Uint8Array;
}

interface Level extends LevelRecords {
  sink?: LevelRequest['sink'];
}

export interface MultiSignatureOptions extends Omit<SignatureOptions, 'blockSize' | 'hashLengths'> {
  levels: LevelRequest[];
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
    const blockSizes = options.levels.map((request) => (typeof request.blockSize === 'function' ? request.blockSize(length) : request.blockSize));
    // Chunks hold whole blocks of every level that fits twice in one; larger blocks are streamed.
    const fitting = blockSizes.filter((bs) => 2 * bs <= CHUNK);
    const unit = fitting.length > 0 ? Math.max(...fitting) : 0;
    // Without a level that fits, a 1 MiB buffer (blocks up to 64 MiB then stream through it).
    const chunk = fitting.length > 0 ? Math.floor(CHUNK / unit) * unit : 1 << 20;
    const levels: Level[] = options.levels.map((request, i) => {
      const blockSize = blockSizes[i]!;
      const hashLengths = request.hashLengths?.(length, blockSize) ?? zsyncmakeHashLengths(length, blockSize);
      // A level with a sink keeps no record array, unless its blocks stream across chunks.
      const held = !request.sink || !tiles(chunk, blockSize);
      return { blockSize, hashLengths, records: new Uint8Array(held ? blockCount(length, blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes) : 0), ...(request.sink ? { sink: request.sink } : {}) };
    });
    const fileHash = options.fileHash ?? 'sha1';
    const whole = createHash(fileHash); // the whole-file hash, SHA-1 unless asked otherwise
    const sha512 = options.sha512 ? createHash('sha512') : undefined;
    const workers = options.workers ?? Math.max(1, availableParallelism() - 1);
    const url = workerUrl('hash-worker');
    const job: Job = { fh, path, length, levels, chunk, wholeHashes: sha512 ? [whole, sha512] : [whole], strongHash: options.strongHash ?? 'MD4', onProgress: options.onProgress };
    readCounter.files++;
    let threads = 0;
    const parallel = levels.filter((l) => tiles(chunk, l.blockSize));
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
    // Levels that streamed across chunks but wanted a sink get their records now, whole.
    for (const l of levels) if (l.sink && l.records.length > 0) (l.sink(l.records, 0), (l.records = new Uint8Array(0)));
    return { length, mtime: Math.floor(st.mtimeMs / 1000), [fileHash]: whole.digest('hex'), ...(sha512 ? { sha512: sha512.digest('base64') } : {}), levels: levels.map(({ sink: _sink, ...l }) => l), threads };
  } finally {
    await fh.close();
  }
}

interface Job {
  fh: FileHandle;
  path: string;
  length: number;
  levels: Level[];
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

/** Blocks of this size are hashed chunk by chunk (else they stream across chunks). */
const tiles = (chunk: number, blockSize: number): boolean => chunk % blockSize === 0 && chunk >= 2 * blockSize;

const recordLength = (l: LevelRecords): number => l.hashLengths.rsumBytes + l.hashLengths.checksumBytes;

/** Records of the chunk at `offset` for levels whose blocks tile it: into their arrays, or to their sinks. */
function chunkRecords(md4: Md4, data: Uint8Array, offset: number, levels: Level[]): void {
  const outs = levels.map((l) => (l.sink ? new Uint8Array(Math.ceil(data.length / l.blockSize) * recordLength(l)) : l.records));
  writeLevelRecords(md4, data, levels, outs, levels.map((l) => (l.sink ? 0 : offset / l.blockSize)));
  levels.forEach((l, i) => l.sink?.(outs[i]!, (offset / l.blockSize) * recordLength(l)));
}

async function hashHere(job: Job): Promise<void> {
  // Levels whose blocks tile a chunk are done chunk by chunk with one weak-sum pass; larger ones stream.
  const aligned = job.levels.filter((l) => tiles(job.chunk, l.blockSize));
  const streamed = await Promise.all(job.levels.filter((l) => !aligned.includes(l)).map(async (l) => new BlockRecordWriter(await createStrongHasher(job.strongHash), l.blockSize, l.hashLengths, l.records, 0)));
  const md4 = await createStrongHasher(job.strongHash);
  const buf = new Uint8Array(job.chunk);
  for (let offset = 0; offset < job.length; ) {
    const n = await readFull(job, buf, offset);
    const view = buf.subarray(0, n);
    for (const h of job.wholeHashes) h.update(view);
    if (aligned.length > 0) chunkRecords(md4, view, offset, aligned);
    for (const w of streamed) w.update(view);
    offset += n;
    job.onProgress?.(offset, job.length);
  }
  for (const w of streamed) w.finish();
}

/** Job ids unique in the process: workers are shared by every read, results find their read by id. */
let nextJobId = 0;

async function hashInWorkers(job: Job, parallel: Level[], count: number, url: URL): Promise<void> {
  const chunk = job.chunk;
  const slots = count * 2 + 1; // per worker one being hashed and one queued; one for this thread
  const shared = takeSharedMemory(slots * chunk);
  const pool = acquireHashWorkers(count, url);
  const inFlight = new Array<number>(count).fill(0);
  const freeSlots = Array.from({ length: slots }, (_, i) => i);
  const pending = new Map<number, { slot: number; worker: number; offset: number }>();
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => { const w = wake; wake = undefined; w?.(); };

  const listeners = pool.map((worker, w) => {
    const onMessage = (result: HashJobResult): void => {
      const p = pending.get(result.id);
      if (!p) return; // another read's result
      pending.delete(result.id);
      try {
        parallel.forEach((l, i) => {
          const at = (p.offset / l.blockSize) * recordLength(l);
          if (l.sink) l.sink(result.records[i]!, at);
          else l.records.set(result.records[i]!, at);
        });
      } catch (error) {
        failure ??= error; // a sink that cannot write: the read stops with its error
      }
      freeSlots.push(p.slot);
      inFlight[w]!--;
      notify();
    };
    const onError = (error: unknown): void => { failure ??= error; notify(); };
    const onExit = (): void => { failure ??= new Error('a hashing worker stopped'); notify(); };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    return () => worker.off('message', onMessage).off('error', onError).off('exit', onExit);
  });
  const waitFor = async (ready: () => boolean): Promise<void> => {
    while (!ready() && failure === undefined) await new Promise<void>((resolve) => { wake = resolve; });
    if (failure !== undefined) throw failure instanceof ZpumpError ? failure : new ZpumpError('E_INTERNAL', `a hashing worker failed: ${String(failure)}`, { cause: failure });
  };

  // Levels of blocks too large for a chunk follow the file here, in order, across chunks.
  const streamed = await Promise.all(
    job.levels.filter((l) => !parallel.includes(l)).map(async (l) => new BlockRecordWriter(await createStrongHasher(job.strongHash), l.blockSize, l.hashLengths, l.records, 0)),
  );
  const here = await createStrongHasher(job.strongHash);
  try {
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
        chunkRecords(here, data, offset, parallel);
        freeSlots.push(slot);
        offset += n;
        job.onProgress?.(offset, job.length);
        continue;
      }
      inFlight[w]!++;
      const id = nextJobId++;
      pending.set(id, { slot, worker: w, offset });
      const message: HashJob = { shared, byteOffset: slot * chunk, length: n, levels: parallel.map((l) => ({ blockSize: l.blockSize, hashLengths: l.hashLengths })), strongHash: job.strongHash, id };
      pool[w]!.postMessage(message);
      offset += n;
      job.onProgress?.(offset, job.length);
    }
    for (const writer of streamed) writer.finish();
    await waitFor(() => pending.size === 0);
    giveSharedMemory(shared); // only after every job is back: a failed read's workers may still read it
  } finally {
    for (const off of listeners) off();
    releaseHashWorkers(pool);
  }
}
