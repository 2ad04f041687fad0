// Worker thread: scans one part of a seed speculatively (from a snapshot of the blocks already
// found), writes the blocks it finds straight into the output file, and returns its decisions
// for the main thread to replay in file order (local/parallel-scan.ts).

import { closeSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockIndex, type SharedBlockIndex } from '../engine/block-index.js';
import { ScanLog, SeedMatcher } from '../engine/matcher.js';
import { createStrongHasher, type StrongHashName } from '../engine/strong-hash.js';
import { scanRange, zeroTest, type ScanBuffers } from './seed-scan.js';
import { openOwnTemp } from './temp-owner.js';

export interface ScanWorkerSetup {
  /** The main thread's block index (records, weak sums, chains, filter), read in place. */
  index: SharedBlockIndex;
  strongHash: StrongHashName;
  outPath: string;
}

export interface ScanJob {
  part: number;
  path: string;
  size: number;
  from: number;
  to: number;
  known: Uint8Array;
  /** Note blocks ruled out at their own offset (SeedMatcher.ownMiss), for this thread to merge. */
  ownMiss: boolean;
}

export type ScanJobResult = { part: number; log: Float64Array; ownMiss?: Uint8Array; error?: undefined } | { part: number; error: string; code?: string };

const setup = workerData as ScanWorkerSetup;
const shared = setup.index;
const index = new BlockIndex({ blockSize: shared.blockSize, length: shared.length, hashLengths: shared.hashLengths, records: new Uint8Array(shared.records) }, shared);
const md4 = await createStrongHasher(setup.strongHash);
const out = openOwnTemp(setup.outPath);
const B = shared.blockSize;
const PIECE = 256 << 10;
const buffers: ScanBuffers = {};
const zero = zeroTest();

parentPort!.on('message', (job: ScanJob | 'close') => {
  if (job === 'close') {
    closeSync(out);
    parentPort!.close();
    return;
  }
  void run(job).then((result) => {
    if (result.error === undefined) parentPort!.postMessage(result, [result.log.buffer as ArrayBuffer, ...(result.ownMiss ? [result.ownMiss.buffer as ArrayBuffer] : [])]);
    else parentPort!.postMessage(result);
  });
});

async function run(job: ScanJob): Promise<ScanJobResult> {
  try {
    index.restart();
    const matcher = new SeedMatcher(index, md4, job.known);
    const log = new ScanLog();
    matcher.log = log;
    // Weak sums at blocks' own offsets are facts about the seed, whatever the replay keeps.
    if (job.ownMiss) matcher.ownMiss = new Uint8Array((index.count + 7) >>> 3);
    const fh = await open(job.path, 'r');
    try {
      await scanRange(fh, job.path, job.size, matcher, job.from, job.to, (id, buf, pos) => {
        const n = Math.min(B, shared.length - id * B);
        if (!zero(buf, pos, n)) writeSync(out, buf, pos, n, id * B);
      }, undefined, PIECE, buffers);
    } finally {
      await fh.close();
    }
    return { part: job.part, log: log.toArray(), ownMiss: matcher.ownMiss };
  } catch (error) {
    const e = error as Error & { code?: string };
    return { part: job.part, error: e.message, code: e.code };
  }
}
