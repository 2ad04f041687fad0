// Blocks looked for where they most likely are instead of by sliding: target blocks [first, last)
// at their own offset plus a shift, read in large pieces, one weak sum per block and a strong hash
// only where it agrees. In-place rewrites, and data moved by a shift already seen, cost a
// sequential read and no sliding.

import type { FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import type { SeedMatcher } from '../engine/matcher.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import { fromSystemError } from '../errors.js';
import type { PlacesPool, PlaceTask } from './parallel-places.js';
import { checkPiece, indexRecords } from './piece-check.js';

export interface BlockTarget {
  index: BlockIndex;
  matcher: SeedMatcher;
  hasher: StrongHasher;
  write: (id: number, buf: Uint8Array, pos: number) => void;
  /** Seed offset minus target offset of each block found in this seed (NaN: not found here). */
  shift: Float64Array;
  /**
   * Worker threads for the checks, and this target's level registered with them (none: this
   * thread). With `written`, the workers write the blocks they find into the pool's output
   * themselves, and this is called instead of `write` (to hash them).
   */
  places?: { pool: PlacesPool; level: number; written?: (id: number, buf: Uint8Array, pos: number) => void };
}

const PIECE = 1 << 20;

/** A buffer for tryBlocksAt, reused from call to call. */
export function placesBuffer(blockSize: number): Uint8Array {
  return new Uint8Array(Math.max(blockSize, Math.floor(PIECE / blockSize) * blockSize));
}

export async function tryBlocksAt(fh: FileHandle, seed: string, size: number, t: BlockTarget, first: number, last: number, shift: number, buf: Uint8Array): Promise<void> {
  const B = t.index.blockSize;
  const perPiece = buf.length / B;
  for (let id = first; id < last && !t.matcher.complete; id += perPiece) {
    const wanted = wantedIn(t, id, Math.min(last, id + perPiece));
    const from = id * B + shift;
    if (!wanted || from < 0 || from >= size) continue;
    let got: number;
    try {
      ({ bytesRead: got } = await fh.read(buf, 0, Math.min(wanted.length * B, size - from), from));
    } catch (error) {
      throw fromSystemError(error, 'cannot read the seed', seed);
    }
    const found = new Uint8Array(wanted.length);
    checkPiece(indexRecords(t.index), t.hasher, buf, got, id, wanted, found);
    takeFound(t, id, found, buf, shift);
  }
}

/** 1 for each block of [first, stop) still missing; undefined when none is. */
export function wantedIn(t: BlockTarget, first: number, stop: number): Uint8Array | undefined {
  const known = t.matcher.known;
  let wanted: Uint8Array | undefined;
  for (let k = first; k < stop; k++) {
    if (known[k]) continue;
    wanted ??= new Uint8Array(stop - first);
    wanted[k - first] = 1;
  }
  return wanted;
}

/** Take the blocks a piece check found (block k of `found` at buf[k·B]), unless found meanwhile. */
export function takeFound(t: BlockTarget, first: number, found: Uint8Array, buf: Uint8Array, shift: number, write = t.write): void {
  const B = t.index.blockSize;
  for (let k = 0; k < found.length; k++) {
    const id = first + k;
    if (!found[k] || t.matcher.known[id]) continue;
    t.matcher.markKnown(id);
    t.shift[id] = shift;
    write(id, buf, k * B);
  }
}

/** tryBlocksAt for each task in turn: on the workers when there are some and the tasks are worth it. */
export async function tryTasks(fh: FileHandle, seed: string, size: number, t: BlockTarget, tasks: readonly PlaceTask[], buf?: Uint8Array): Promise<void> {
  if (t.places?.pool.worthIt(t, tasks)) return t.places.pool.tryAt(fh, seed, size, t, t.places.level, tasks);
  const b = buf ?? placesBuffer(t.index.blockSize);
  for (const task of tasks) await tryBlocksAt(fh, seed, size, t, task.first, task.last, task.shift, b);
}
