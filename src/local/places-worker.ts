// Worker thread: reads a piece of a local copy into shared memory, says which target blocks it
// holds at the places asked for (one weak sum per block, the strong hash only where it agrees),
// and writes them into the output file when asked (blocks of zeros are not written: the output
// starts as zeros). The main thread hashes what matched from the same memory, in file order
// (local/parallel-places.ts).

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createStrongHasher, type StrongHashName, type StrongHasher } from '../engine/strong-hash.js';
import type { HashLengths } from '../format/hash-lengths.js';
import { checkPiece, RecordsView } from './piece-check.js';
import { isAllZero } from './seed-scan.js';
import { openOwnTemp } from './temp-owner.js';

// A slot's answer in shared memory: state, bytes read, strong hashes (local/parallel-places.ts reads it).
const DONE = 2;
const FAILED = 3;
const ANSWER = 4;
const WRITE_PIECE = 256 << 10;

/** One signature's blocks (a two-level sync has two), sent once before the checks that use it. */
export interface PlacesLevel {
  type: 'level';
  level: number;
  blockSize: number;
  length: number;
  hashLengths: HashLengths;
  strongHash: StrongHashName;
  /** The control file's records (only those of blocks ever asked for need be filled). */
  records: SharedArrayBuffer;
}

/** Where jobs that write put their blocks (the output file, open here until the next one). */
export interface PlacesOutput {
  type: 'output';
  path: string | undefined;
}

/** The pieces' memory, shared with the main thread; a job names one by its index. */
export interface PlacesSlots {
  type: 'slots';
  memory: SharedArrayBuffer[];
  /** Per slot: state (POSTED, DONE, FAILED), bytes read, strong hashes (Int32 ×4). */
  answers: SharedArrayBuffer;
  /** Per slot: maxBlocks found flags. */
  found: SharedArrayBuffer;
  maxBlocks: number;
}

export interface PlacesJob {
  type: 'check';
  job: number;
  level: number;
  slot: number;
  /** Read `length` bytes of `path` at `from` (fewer at its end): where target block `first` would start. */
  path: string;
  from: number;
  length: number;
  first: number;
  /** 1 for each block of the piece to check (missing when the job was sent). */
  wanted: Uint8Array;
  /** Write the blocks found into the output file. */
  write: boolean;
}

export interface PlacesResult {
  job: number;
  /** Bytes read into the slot. */
  got: number;
  /** 1 for each block of the piece that is there. */
  found: Uint8Array;
  /** Strong hashes computed (work, for tests). */
  strong: number;
  error?: { message: string; code?: string; writing: boolean };
}

interface Level {
  records: RecordsView;
  hasher: StrongHasher;
}

const levels = new Map<number, Level>();
let slots: SharedArrayBuffer[] = [];
let answers: Int32Array<ArrayBufferLike> = new Int32Array(0);
let foundFlags: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let maxBlocks = 0;
let file: { path: string; fd: number } | undefined;
let output: number | undefined;
// Messages are handled in order: a level's hasher is made before any check of it runs.
let queue = Promise.resolve();

parentPort!.on('message', (msg: PlacesLevel | PlacesSlots | PlacesOutput | PlacesJob | 'close') => {
  if (msg === 'close') {
    void queue.then(() => {
      if (file) closeSync(file.fd);
      if (output !== undefined) closeSync(output);
      parentPort!.close();
    });
    return;
  }
  queue = queue.then(() => {
    if (msg.type === 'slots') {
      slots = msg.memory;
      answers = new Int32Array(msg.answers);
      foundFlags = new Uint8Array(msg.found);
      maxBlocks = msg.maxBlocks;
    }
    else if (msg.type === 'output') setOutput(msg.path);
    else if (msg.type === 'level') return addLevel(msg);
    else check(msg);
    return undefined;
  });
});

async function addLevel(m: PlacesLevel): Promise<void> {
  levels.set(m.level, { records: new RecordsView(m.blockSize, m.length, m.hashLengths, new Uint8Array(m.records)), hasher: await createStrongHasher(m.strongHash) });
}

function setOutput(path: string | undefined): void {
  if (output !== undefined) closeSync(output);
  output = undefined;
  if (path !== undefined) output = openOwnTemp(path);
}

function read(path: string, data: Uint8Array, from: number): number {
  if (file?.path !== path) {
    if (file) closeSync(file.fd);
    file = undefined;
    file = { path, fd: openSync(path, 'r') };
  }
  let got = 0;
  while (got < data.length) {
    const n = readSync(file.fd, data, got, data.length - got, from + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function check(job: PlacesJob): void {
  const found = new Uint8Array(job.wanted.length);
  let strong = 0;
  let got = 0;
  let writing = false;
  try {
    const l = levels.get(job.level);
    if (!l) throw new Error(`level ${job.level} was never sent`);
    const data = new Uint8Array(slots[job.slot]!, 0, job.length);
    got = read(job.path, data, job.from);
    strong = checkPiece(l.records, l.hasher, data, got, job.first, job.wanted, found);
    if (job.write) {
      writing = true;
      if (output === undefined) throw new Error('no output file to write to');
      const B = l.records.blockSize;
      for (let k = 0; k < found.length; k++) {
        if (!found[k]) continue;
        const len = Math.min(B, l.records.length - (job.first + k) * B);
        if (isAllZero(data, k * B, len)) continue;
        // From shared memory, one large write costs several times a few smaller ones here (2 MiB: ~3 ms against ~0.25).
        for (let at = 0; at < len; at += WRITE_PIECE) writeSync(output, data, k * B + at, Math.min(WRITE_PIECE, len - at), (job.first + k) * B + at);
      }
    }
    // The answer goes through shared memory: a message per piece costs more than the piece.
    foundFlags.set(found, job.slot * maxBlocks);
    const at = job.slot * ANSWER;
    answers[at + 1] = got;
    answers[at + 2] = strong;
    Atomics.store(answers, at, DONE);
    Atomics.notify(answers, at);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    parentPort!.postMessage({ job: job.job, got, found, strong, error: { message: e.message, writing, ...(e.code ? { code: e.code } : {}) } } satisfies PlacesResult);
    Atomics.store(answers, job.slot * ANSWER, FAILED);
    Atomics.notify(answers, job.slot * ANSWER);
  }
}
