// Blocks looked for where they most likely are (local/likely-places.ts), with the reading, block
// hashing and writing on a worker thread (local/places-worker.ts): the worker reads each piece of
// the local copy into shared memory, says which blocks of it match and writes them into the
// output; this thread takes the results piece after piece in file order and hands each block's
// bytes, still in that memory, to the output's running whole-file hash (local/output-file.ts), so
// that hash goes on while the worker works. A few pieces are in flight at once; when the worker
// is behind, this thread checks a piece itself. The result is exactly tryBlocksAt's.

import { Worker } from 'node:worker_threads';
import type { FileHandle } from 'node:fs/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import { strongHashOf, type ControlFile } from '../format/control-file.js';
import { takeFound, wantedIn, type BlockTarget } from './likely-places.js';
import { checkPiece, indexRecords } from './piece-check.js';
import type { PlacesJob, PlacesLevel, PlacesOutput, PlacesResult, PlacesSlots } from './places-worker.js';
import { workerUrl } from './worker-url.js';

/** Target blocks [first, last) looked for at their own offset plus `shift` in the local copy. */
export interface PlaceTask {
  first: number;
  last: number;
  shift: number;
}

/** Work done, for tests (counted, never timed). */
export interface PlacesWork {
  /** Pieces checked (on the workers or here). */
  pieces: number;
  /** Of those, pieces this thread checked itself. */
  here: number;
  /** Blocks the worker checked, and strong hashes it computed. */
  blocks: number;
  strong: number;
}

const PIECE = 1 << 20;
/** Blocks per piece at most (pieces of small blocks are cut shorter): the size of a slot's answer. */
const MAX_BLOCKS = 2048;
/** A slot's state in the shared answers (slot·ANSWER + 0; got and strong follow), as places-worker.ts writes them. */
const POSTED = 1;
const DONE = 2;
const ANSWER = 4;
// Node >= 16 has it; TypeScript's lib here does not declare it yet.
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array<SharedArrayBuffer>, at: number, value: number): { async: boolean; value: Promise<string> | string } }).waitAsync;
/** Pieces in flight per worker (one being checked while the next waits); two more are hashed or checked here. */
const PER_WORKER = 2;
/** Below this many bytes of pieces a call stays on this thread (tryBlocksAt). */
export const MIN_PARALLEL_BYTES = 8 << 20;
// A small heap: the worker keeps a level's records (shared) and a few small arrays per piece.
const LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 };

interface Piece {
  slot: number;
  first: number;
  shift: number;
  wanted: Uint8Array;
  /** The worker wrote the blocks it found. */
  written: boolean;
  result: Promise<PlacesResult>;
}

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (r: PlacesResult) => void; reject: (e: Error) => void }>;
}

export class PlacesPool {
  readonly work: PlacesWork = { pieces: 0, here: 0, blocks: 0, strong: 0 };
  private threads: Thread[] = [];
  private readonly levels: PlacesLevel[] = [];
  private slots: SharedArrayBuffer[] = [];
  // Answers come back through shared memory (state, got, strong; found flags), not as messages: a
  // message per piece cost up to 1 ms each on a busy machine (both threads contend for the port).
  private answers: Int32Array<SharedArrayBuffer> = new Int32Array(new SharedArrayBuffer(0));
  private found: Uint8Array<SharedArrayBuffer> = new Uint8Array(new SharedArrayBuffer(0));
  private output: PlacesOutput = { type: 'output', path: undefined };
  private nextJob = 0;
  private failed: Error | undefined;

  private sent = 0;

  private constructor(private readonly url: URL, private readonly count: number, private readonly hereEvery: number) {}

  /**
   * One worker: this thread writes the blocks found (and hashes them when the output is written in
   * order), and checks pieces itself whenever the worker is behind, so a second worker would add
   * little but its memory (~10 MB). Undefined for one thread.
   * `hereEvery` (tests): this thread checks every hereEvery-th piece, the worker the others.
   */
  static create(threads: number, options: { hereEvery?: number } = {}): PlacesPool | undefined {
    const url = workerUrl('places-worker');
    return threads >= 2 && url ? new PlacesPool(url, 1, options.hereEvery ?? 0) : undefined;
  }

  /** Register a signature's blocks under `level`, for the checks that name it. */
  addLevel(level: number, cf: ControlFile): void {
    // Records already in shared memory (fine records as fetched) are shared as they are.
    const whole = cf.records.buffer instanceof SharedArrayBuffer && cf.records.byteOffset === 0 && cf.records.byteLength === cf.records.buffer.byteLength;
    const records = whole ? (cf.records.buffer as SharedArrayBuffer) : new SharedArrayBuffer(cf.records.length);
    if (!whole) new Uint8Array(records).set(cf.records);
    const msg: PlacesLevel = { type: 'level', level, blockSize: cf.blockSize, length: cf.length, hashLengths: cf.hashLengths, strongHash: strongHashOf(cf), records };
    const at = this.levels.findIndex((l) => l.level === level);
    if (at >= 0) this.levels[at] = msg;
    else this.levels.push(msg);
    for (const t of this.threads) t.worker.postMessage(msg);
  }

  /**
   * The file that targets with a `written` callback are rebuilt in (a new file that reads as
   * zeros: blocks of zeros are not written): the worker writes the blocks it finds there.
   */
  setOutput(path: string | undefined): void {
    this.output = { type: 'output', path };
    for (const t of this.threads) t.worker.postMessage(this.output);
  }

  /** Pieces worth the worker in these tasks? */
  worthIt(t: BlockTarget, tasks: readonly PlaceTask[]): boolean {
    let bytes = 0;
    for (const task of tasks) bytes += (task.last - task.first) * t.index.blockSize;
    return bytes >= MIN_PARALLEL_BYTES;
  }

  /**
   * tryBlocksAt for each task in turn, in the seed of `size` bytes at `seed` (the workers open it
   * by name; `fh` is this thread's handle on it, for the pieces it checks itself).
   */
  async tryAt(fh: FileHandle, seed: string, size: number, t: BlockTarget, level: number, tasks: readonly PlaceTask[]): Promise<void> {
    if (!this.levels.some((l) => l.level === level)) throw new ZpumpError('E_INTERNAL', `places level ${level} was never registered`);
    const B = t.index.blockSize;
    const per = Math.max(1, Math.min(MAX_BLOCKS, Math.floor(PIECE / B)));
    this.start(per * B);
    const queue: Piece[] = [];
    const free = this.slots.map((_, i) => i);
    const write = this.output.path !== undefined && t.places?.written !== undefined;
    try {
      for (const task of tasks) {
        for (let id = task.first; id < task.last && !t.matcher.complete; id += per) {
          const wanted = wantedIn(t, id, Math.min(task.last, id + per));
          const from = id * B + task.shift;
          if (!wanted || from < 0 || from >= size) continue;
          if (free.length === 0) free.push(await this.apply(queue.shift()!, t, seed));
          const slot = free.pop()!;
          const length = Math.min(wanted.length * B, size - from);
          // Workers behind (this thread has little to write): this thread checks the piece itself.
          const here = this.hereEvery > 0 ? this.sent++ % this.hereEvery === 0 : this.threads.every((th) => th.pending.size >= PER_WORKER);
          queue.push(here ? await this.checkHere(fh, seed, t, slot, from, length, id, wanted, task.shift) : this.send(slot, seed, from, length, level, id, wanted, task.shift, write));
        }
      }
      while (queue.length > 0) await this.apply(queue.shift()!, t, seed);
    } finally {
      // Pieces still out (an error above) must be done before their memory is used again.
      await Promise.allSettled(queue.map((p) => p.result));
    }
  }

  private async apply(p: Piece, t: BlockTarget, seed: string): Promise<number> {
    const r = await p.result;
    if (r.error) {
      const cause = Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {});
      throw r.error.writing ? fromSystemError(cause, 'cannot write the new version', this.output.path ?? '') : fromSystemError(cause, 'cannot read the seed', seed);
    }
    this.work.pieces++;
    for (const w of p.wanted) this.work.blocks += w;
    this.work.strong += r.strong;
    takeFound(t, p.first, r.found, new Uint8Array(this.slots[p.slot]!, 0, r.got), p.shift, p.written ? t.places!.written : t.write);
    return p.slot;
  }

  private async checkHere(fh: FileHandle, seed: string, t: BlockTarget, slot: number, from: number, length: number, first: number, wanted: Uint8Array, shift: number): Promise<Piece> {
    const data = new Uint8Array(this.slots[slot]!, 0, length);
    let got = 0;
    try {
      while (got < length) {
        const { bytesRead } = await fh.read(data, got, length - got, from + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (error) {
      throw fromSystemError(error, 'cannot read the seed', seed);
    }
    const found = new Uint8Array(wanted.length);
    const strong = checkPiece(indexRecords(t.index), t.hasher, data, got, first, wanted, found);
    this.work.here++;
    return { slot, first, shift, wanted, written: false, result: Promise.resolve({ job: -1, got, found, strong }) };
  }

  private send(slot: number, path: string, from: number, length: number, level: number, first: number, wanted: Uint8Array, shift: number, write: boolean): Piece {
    const job = this.nextJob++;
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const answers = this.answers;
    const found = this.found;
    const result = new Promise<PlacesResult>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(job, { resolve, reject });
      Atomics.store(answers, slot * ANSWER, POSTED);
      const msg: PlacesJob = { type: 'check', job, level, slot, path, from, length, first, wanted, write };
      thread.worker.postMessage(msg);
      const wait = waitAsync(answers, slot * ANSWER, POSTED);
      void Promise.resolve(wait.value).then(() => {
        // FAILED: the reason comes as a message (the handler below settles the job).
        if (Atomics.load(answers, slot * ANSWER) !== DONE || !thread.pending.has(job)) return;
        this.settle(thread, job);
        resolve({ job, got: answers[slot * ANSWER + 1]!, strong: answers[slot * ANSWER + 2]!, found: found.slice(slot * MAX_BLOCKS, slot * MAX_BLOCKS + wanted.length) });
      });
    });
    result.catch(() => undefined); // reported when its turn comes, not as unhandled
    return { slot, first, shift, wanted, written: write, result };
  }

  /** The workers, and pieces of at least `pieceBytes`. */
  private start(pieceBytes: number): void {
    let fresh = false;
    while (this.threads.length < this.count) {
      const worker = new Worker(this.url, { resourceLimits: LIMITS });
      const thread: Thread = { worker, pending: new Map() };
      const fail = (error: Error): void => {
        this.failed ??= new ZpumpError('E_IO', `seed check thread failed: ${error.message}`, { cause: error });
        for (const p of thread.pending.values()) p.reject(this.failed);
        thread.pending.clear();
      };
      worker.on('message', (r: PlacesResult) => {
        const p = thread.pending.get(r.job);
        this.settle(thread, r.job);
        p?.resolve(r);
      });
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`exited (${code})`)));
      worker.unref();
      for (const l of this.levels) worker.postMessage(l);
      worker.postMessage(this.output);
      this.threads.push(thread);
      fresh = true;
    }
    if (fresh || (this.slots[0]?.byteLength ?? 0) < pieceBytes) {
      if ((this.slots[0]?.byteLength ?? 0) < pieceBytes) {
        this.slots = Array.from({ length: PER_WORKER * this.count + 2 }, () => new SharedArrayBuffer(pieceBytes));
        this.answers = new Int32Array(new SharedArrayBuffer(this.slots.length * ANSWER * 4));
        this.found = new Uint8Array(new SharedArrayBuffer(this.slots.length * MAX_BLOCKS));
      }
      const msg: PlacesSlots = { type: 'slots', memory: this.slots, answers: this.answers.buffer, found: this.found.buffer, maxBlocks: MAX_BLOCKS };
      for (const t of this.threads) t.worker.postMessage(msg);
    }
  }

  private settle(thread: Thread, job: number): void {
    if (!thread.pending.delete(job)) return;
    // An idle worker never keeps the process alive; one with work does, until it answers.
    if (thread.pending.size === 0) thread.worker.unref();
  }

  /** The workers exit (after their last check); the pool can start new ones. */
  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    this.slots = [];
    await Promise.all(threads.map(async ({ worker }) => {
      worker.removeAllListeners('exit');
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.ref(); // the process waits for the exit
      worker.postMessage('close');
      await exited;
    }));
  }
}
