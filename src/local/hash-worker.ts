// Worker thread: block records for chunks the main thread has read into shared memory.
// The main thread keeps reading and computing the SHA-1 while workers hash blocks.

import { parentPort } from 'node:worker_threads';
import { BlockRecordWriter } from '../engine/block-records.js';
import { createStrongHasher, type StrongHashName, type StrongHasher } from '../engine/strong-hash.js';
import type { HashLengths } from '../format/hash-lengths.js';

export interface HashJob {
  shared: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  blockSize: number;
  hashLengths: HashLengths;
  strongHash: StrongHashName;
  firstRecord: number;
  id: number;
}

export interface HashJobResult {
  id: number;
  records: Uint8Array;
}

// One hasher per algorithm, made once: a job of another algorithm waits for its hasher only once.
const hashers = new Map<StrongHashName, StrongHasher>([['MD4', await createStrongHasher('MD4')]]);

parentPort!.on('message', async (job: HashJob) => {
  let md4 = hashers.get(job.strongHash);
  if (!md4) hashers.set(job.strongHash, (md4 = await createStrongHasher(job.strongHash)));
  const data = new Uint8Array(job.shared, job.byteOffset, job.length);
  const blocks = Math.ceil(job.length / job.blockSize);
  const records = new Uint8Array(blocks * (job.hashLengths.rsumBytes + job.hashLengths.checksumBytes));
  const writer = new BlockRecordWriter(md4, job.blockSize, job.hashLengths, records, 0);
  writer.update(data);
  writer.finish();
  const result: HashJobResult = { id: job.id, records };
  parentPort!.postMessage(result, [records.buffer]);
});
