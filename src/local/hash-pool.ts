// The hashing workers (hash-worker.ts) live as long as the process, not one file: starting a
// worker costs ~40 ms and ~10 MB, and what a terminated worker gave back stays in the process's
// RSS (the allocator keeps its arenas), so `announce` of four 128 MiB files with a new pool per
// file grew from 88 to 131 MB peak. Idle workers are unref'd and never keep the process alive;
// a worker that dies is dropped and a new one is started for the next file.

import { Worker } from 'node:worker_threads';

// Small heaps: a worker allocates only a few small arrays per chunk, and RSS must stay low.
const LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 };

interface Slot {
  worker: Worker;
  users: number;
}

const slots: Slot[] = [];
let spareMemory: SharedArrayBuffer | undefined;

/** Test hook: workers started by this process so far. */
export const hashPoolStats = { started: 0 };

/** `count` live workers for one read; give them back with releaseHashWorkers. */
export function acquireHashWorkers(count: number, url: URL): Worker[] {
  while (slots.length < count) {
    const worker = new Worker(url, { resourceLimits: LIMITS });
    hashPoolStats.started++;
    const slot: Slot = { worker, users: 0 };
    worker.unref();
    worker.on('exit', () => {
      const at = slots.indexOf(slot);
      if (at >= 0) slots.splice(at, 1);
    });
    // A crash reaches the reader through its own listener; this one keeps an idle crash quiet.
    worker.on('error', () => undefined);
    slots.push(slot);
  }
  return slots.slice(0, count).map((slot) => {
    if (slot.users++ === 0) slot.worker.ref(); // results are awaited: the process must wait for them
    return slot.worker;
  });
}

export function releaseHashWorkers(workers: readonly Worker[]): void {
  for (const worker of workers) {
    const slot = slots.find((s) => s.worker === worker);
    if (slot && --slot.users === 0) worker.unref();
  }
}

/** Shared memory for the chunks of one read: the last one given back when it is big enough. */
export function takeSharedMemory(bytes: number): SharedArrayBuffer {
  const spare = spareMemory;
  if (spare && spare.byteLength >= bytes) {
    spareMemory = undefined;
    return spare;
  }
  return new SharedArrayBuffer(bytes);
}

export function giveSharedMemory(memory: SharedArrayBuffer): void {
  if (!spareMemory || spareMemory.byteLength < memory.byteLength) spareMemory = memory;
}

/** Stop every worker (tests, and a process that wants its threads back now). */
export async function closeHashWorkers(): Promise<void> {
  const all = slots.splice(0, slots.length);
  await Promise.all(all.map((s) => s.worker.terminate()));
  spareMemory = undefined;
}
