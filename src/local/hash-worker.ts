// Worker thread: block records for chunks the main thread has read into shared memory, at every
// block size asked for (a two-level announcement's levels from the same bytes). The main thread
// keeps reading and computing the whole-file hashes while workers hash blocks.

import { parentPort } from 'node:worker_threads';
import { createStrongHasher, type StrongHashName, type StrongHasher } from '../engine/strong-hash.js';
import type { HashLengths } from '../format/hash-lengths.js';
import { writeLevelRecords } from './level-records.js';

export interface HashJob {
  shared: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  /** The chunk starts on a block boundary of each. */
  levels: Array<{ blockSize: number; hashLengths: HashLengths }>;
  strongHash: StrongHashName;
  id: number;
}

export interface HashJobResult {
  id: number;
  /** One array per level, in the job's order. */
  records: Uint8Array[];
}

// One hasher per algorithm, made once: a job of another algorithm waits for its hasher only once.
const hashers = new Map<StrongHashName, StrongHasher>([['MD4', await createStrongHasher('MD4')]]);

parentPort!.on('message', async (job: HashJob) => {
  let md4 = hashers.get(job.strongHash);
  if (!md4) hashers.set(job.strongHash, (md4 = await createStrongHasher(job.strongHash)));
  const data = new Uint8Array(job.shared, job.byteOffset, job.length);
  const records = job.levels.map((level) => new Uint8Array(Math.ceil(job.length / level.blockSize) * (level.hashLengths.rsumBytes + level.hashLengths.checksumBytes)));
  writeLevelRecords(md4, data, job.levels, records, job.levels.map(() => 0));
  const result: HashJobResult = { id: job.id, records };
  parentPort!.postMessage(result, records.map((r) => r.buffer as ArrayBuffer));
});
