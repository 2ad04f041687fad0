// Worker thread: block records for chunks the main thread has read into shared memory.
// The main thread keeps reading and computing the SHA-1 while workers hash blocks.

import { parentPort } from 'node:worker_threads';
import { BlockRecordWriter } from '../engine/block-records.js';
import { createMd4 } from '../engine/md4.js';
import type { HashLengths } from '../format/hash-lengths.js';

export interface HashJob {
  shared: SharedArrayBuffer;
  byteOffset: number;
  length: number;
  blockSize: number;
  hashLengths: HashLengths;
  firstRecord: number;
  id: number;
}

export interface HashJobResult {
  id: number;
  records: Uint8Array;
}

const md4 = await createMd4();

parentPort!.on('message', (job: HashJob) => {
  const data = new Uint8Array(job.shared, job.byteOffset, job.length);
  const blocks = Math.ceil(job.length / job.blockSize);
  const records = new Uint8Array(blocks * (job.hashLengths.rsumBytes + job.hashLengths.checksumBytes));
  const writer = new BlockRecordWriter(md4, job.blockSize, job.hashLengths, records, 0);
  writer.update(data);
  writer.finish();
  const result: HashJobResult = { id: job.id, records };
  parentPort!.postMessage(result, [records.buffer]);
});
