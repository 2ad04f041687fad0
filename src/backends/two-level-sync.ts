// A two-level message's sync (README "Two-level sync"): scan the local copy with the coarse
// signature carried in the message; for the coarse blocks still missing fetch only the fine records
// that cover them, look for those fine blocks where the coarse neighbours say they are (local/
// fine-scan.ts), and fetch only the fine blocks still missing.
// Each level that fails falls back to the next, never to a wrong file: an unusable fine signature
// (missing, stale, truncated, lying) → the whole missing coarse blocks, into the same output; a
// result that fails its final check after fine data went in → a coarse-only sync from scratch;
// data that fails the coarse signature → a whole download checked against the message's identity.

import { BlockIndex } from '../engine/block-index.js';
import { neededFineBlocks } from '../engine/fine-plan.js';
import { SeedMatcher } from '../engine/matcher.js';
import { planRanges, rangeBytes } from '../engine/plan.js';
import { createStrongHasher, type StrongHasher } from '../engine/strong-hash.js';
import { isZpumpError, ZpumpError } from '../errors.js';
import { strongHashOf, wholeFileChecks, type ControlFile } from '../format/control-file.js';
import { finalCheck } from '../local/final-check.js';
import { OutputFile } from '../local/output-file.js';
import { scanCoarse } from '../local/coarse-scan.js';
import { isAllZero } from '../local/seed-scan.js';
import { scanFine } from '../local/fine-scan.js';
import { PlacesPool } from '../local/parallel-places.js';
import { availableParallelism } from 'node:os';
import { fetchMissing, type FetchOutcome } from './fetch-missing.js';
import { fetchFineRecords, fineFromWhole, type FineSignatureRef } from './fine-signature.js';
import type { SyncRequest, SyncResult, TwoLevelReport } from './types.js';
import { wholeDownload } from './whole-download.js';

export interface TwoLevelRequest extends SyncRequest {
  fine: FineSignatureRef;
  /** The message's size and identity: the last resort is a whole download checked against them. */
  size: number;
  identity?: { method: 'sha512' | 'md5'; value: string };
  /** The fine signature whole, already checked against its identity (kept for the next version): used instead of fetching records. */
  fineWhole?: ControlFile;
}

interface AttemptState {
  /** Fine blocks went into the output (found locally or fetched): its final check may fail because of them. */
  fineWrote: boolean;
  /** Every missing byte came through the fine level. */
  fineDelivered: boolean;
  fineRecords: number;
}

const WRITE_PIECE = 256 << 10;

/** Levels as the places threads know them. */
const COARSE = 0;
const FINE = 1;

interface Spent {
  bytes: number;
  requests: number;
}

export async function twoLevelSync(request: TwoLevelRequest): Promise<SyncResult> {
  const problems: string[] = [];
  const spent: Spent = { bytes: 0, requests: 0 };
  const finish = (result: SyncResult, level: TwoLevelReport['level'], fineRecords: number): SyncResult => ({
    ...result,
    bytesFetched: result.bytesFetched + spent.bytes,
    requests: (result.requests ?? 0) + spent.requests,
    signatureBytes: spent.bytes,
    twoLevel: { level, coarseBlockSize: request.control.blockSize, fineBlockSize: request.fine.blockSize, fineRecords, ...(problems.length > 0 ? { problems } : {}) },
  });
  let fineRecords = 0;
  // Threads hash the blocks looked for in place; this one reads and writes (local/parallel-places.ts).
  const places = request.seeds.length > 0 ? PlacesPool.create(request.threads ?? availableParallelism()) : undefined;
  places?.addLevel(COARSE, request.control);
  try {
    for (const useFine of [true, false]) {
      const state: AttemptState = { fineWrote: false, fineDelivered: false, fineRecords: 0 };
      try {
        const result = await attempt(request, useFine, spent, problems, state, places);
        return finish(result, state.fineDelivered ? 'fine' : 'coarse', state.fineRecords + fineRecords);
      } catch (error) {
        if (!isZpumpError(error) || error.code !== 'E_VERIFY') throw error;
        problems.push(`${state.fineDelivered ? 'fine' : 'coarse'} level: ${error.message}`);
        fineRecords += state.fineRecords;
        // Without fine data in the output the coarse level itself failed: a rescan would fail the same way.
        if (!state.fineWrote) break;
      }
    }
  } finally {
    await places?.close();
  }
  // The data does not match the coarse signature: only the message's identity can still vouch for it.
  const whole = await wholeDownload({
    dataUrl: request.dataUrl, target: request.target, size: request.size, transport: request.transport,
    ...(request.identity ? { identity: request.identity } : {}), ...(request.mtime !== undefined ? { mtime: request.mtime } : {}),
    ...(request.beforeCommit ? { beforeCommit: request.beforeCommit } : {}),
  });
  return finish(whole, 'whole', fineRecords);
}

async function attempt(request: TwoLevelRequest, useFine: boolean, spent: Spent, problems: string[], state: AttemptState, places: PlacesPool | undefined): Promise<SyncResult> {
  const cf = request.control;
  if (cf.gzip) throw new ZpumpError('E_UNSUPPORTED', 'this control file describes gzip-inside data (Z-Map2), which only the zsync 0.6.x client handles: use --engine zsync or auto');
  const index = new BlockIndex(cf);
  const md4 = await createStrongHasher(strongHashOf(cf));
  // One whole-file check: the message's sha512 when there is one (local/final-check.ts).
  const check = finalCheck(wholeFileChecks(cf), request.sha512, request.md5InBeforeCommit);
  const matcher = new SeedMatcher(index, md4);
  const out = await OutputFile.create(request.target, cf.length, cf.blockSize, check.hashing);
  places?.setOutput(out.path);
  try {
    const shifts = await coarseScan(request, index, matcher, md4, out, places);
    let fetched: FetchOutcome | undefined;
    let dataBytes = 0;
    const fine = useFine && !matcher.complete ? await fineLevel(request, cf, matcher.known, shifts, out, spent, problems, state, places) : undefined;
    if (fine) {
      state.fineDelivered = true;
      fetched = fine.fetched;
      dataBytes = fine.dataBytes;
    } else {
      await places?.close(); // its memory is not kept through the fetch (peak RSS)
      const ranges = planRanges(matcher.known, cf.blockSize, cf.length);
      dataBytes = rangeBytes(ranges);
      if (ranges.length > 0) {
        fetched = await fetchMissing({
          urls: request.dataUrls ?? [request.dataUrl], index, hasher: md4, out, known: matcher.known, transport: request.transport,
          onProgress: (done, total) => request.onProgress?.('fetch', done, total),
        });
      }
    }
    await request.beforeCommit?.(out.path);
    await out.commit(check.expected, request.mtime ?? cf.mtime);
    return {
      engine: 'js', target: request.target, length: cf.length, bytesReused: cf.length - dataBytes, bytesFetched: fetched?.bytesFetched ?? 0,
      requests: fetched?.requests ?? 0, verified: check.verified,
      ...(fetched ? { servedBy: fetched.servedBy, failedUrls: fetched.failedUrls } : {}),
    };
  } catch (error) {
    await places?.close(); // the worker's handle on the temporary goes first (Windows removes no open file)
    await out.discard();
    throw error;
  }
}

/** The coarse level in every seed (local/coarse-scan.ts); returns each seed's shifts (seed offset − target offset per coarse block). */
async function coarseScan(request: TwoLevelRequest, index: BlockIndex, matcher: SeedMatcher, md4: StrongHasher, out: OutputFile, places: PlacesPool | undefined): Promise<Float64Array[]> {
  const shift = new Float64Array(index.count);
  const shifts: Float64Array[] = [];
  // Zero blocks are not written: the output starts as zeros (a sparse target stays sparse).
  const write = (id: number, buf: Uint8Array, pos: number): void => {
    const len = Math.min(index.blockSize, index.length - id * index.blockSize);
    if (isAllZero(buf, pos, len)) return;
    // Large blocks from shared memory (the places threads' pieces) go in a few smaller writes: one
    // write of 2 MiB from a SharedArrayBuffer cost ~3 ms here, eight of 256 KiB ~0.25 ms.
    for (let at = 0; at < len; at += WRITE_PIECE) out.writeAt(id * index.blockSize + at, buf.subarray(pos + at, pos + Math.min(len, at + WRITE_PIECE)));
  };
  // Blocks a worker wrote (zeros included: the file reads as zeros there) are hashed here, in order.
  const written = (id: number, buf: Uint8Array, pos: number): void => out.absorb(id * index.blockSize, buf.subarray(pos, pos + Math.min(index.blockSize, index.length - id * index.blockSize)));
  const target = { index, matcher, hasher: md4, shift, write, ...(places ? { places: { pool: places, level: COARSE, written } } : {}) };
  for (const seed of request.seeds) {
    if (matcher.complete) break;
    await scanCoarse(seed, target, (done, total) => request.onProgress?.('scan', done, total));
    shifts.push(Float64Array.from(shift));
  }
  return shifts;
}

/**
 * The fine level, into the same output. Undefined (with the reason in `problems`) when the fine
 * signature cannot be used or its blocks fail: the caller then fetches the whole missing coarse
 * blocks, which overwrite everything this wrote.
 */
async function fineLevel(
  request: TwoLevelRequest, cf: ControlFile, coarseKnown: Uint8Array, shifts: Float64Array[], out: OutputFile,
  spent: Spent, problems: string[], state: AttemptState, places: PlacesPool | undefined,
): Promise<{ fetched?: FetchOutcome; dataBytes: number } | undefined> {
  let fine;
  try {
    const neededFor = (f: ControlFile): Uint8Array => neededFineBlocks(coarseKnown, cf.blockSize, f.blockSize, cf.length);
    fine = request.fineWhole ? fineFromWhole(request.fine, cf, request.fineWhole, neededFor) : await fetchFineRecords(request.fine, cf, neededFor, request.transport, spent);
  } catch (error) {
    // Whatever is wrong with the fine file (absent, unreachable, unreadable, stale, malformed), the coarse level still works.
    if (!isZpumpError(error) || error.code === 'E_INTERNAL') throw error;
    problems.push(`fine signature: ${error.message}`);
    return undefined;
  }
  state.fineRecords = fine.records;
  const fcf = fine.control;
  const Bf = fcf.blockSize;
  const index = new BlockIndex(fcf);
  const known = new Uint8Array(index.count);
  for (let id = 0; id < known.length; id++) known[id] = fine.needed[id] ? 0 : 1;
  index.link(known); // blocks not needed stay out of the filter: their records were never fetched
  const hasher = await createStrongHasher(strongHashOf(fcf));
  const matcher = new SeedMatcher(index, hasher, known);
  places?.addLevel(FINE, fcf);
  const view = {
    writeBlock: (id: number, buf: Uint8Array, pos: number): void => {
      state.fineWrote = true;
      out.writeAt(id * Bf, buf.subarray(pos, pos + Math.min(Bf, cf.length - id * Bf)));
    },
    written: (id: number, buf: Uint8Array, pos: number): void => {
      state.fineWrote = true;
      out.absorb(id * Bf, buf.subarray(pos, pos + Math.min(Bf, cf.length - id * Bf)));
    },
  };
  for (let i = 0; i < request.seeds.length && !matcher.complete; i++) {
    await scanFine(request.seeds[i]!, {
      index, matcher, hasher, needed: fine.needed, coarseBlockSize: cf.blockSize, coarseKnown,
      coarseShift: shifts[i] ?? new Float64Array(coarseKnown.length).fill(NaN), write: view.writeBlock,
      ...(places ? { places: { pool: places, level: FINE, written: view.written } } : {}),
    });
  }
  await places?.close(); // its memory is not kept through the fetch (peak RSS)
  const ranges = planRanges(known, Bf, cf.length);
  if (ranges.length === 0) return { dataBytes: 0 };
  try {
    const fetched = await fetchMissing({
      urls: request.dataUrls ?? [request.dataUrl], index, hasher, out: view, known, transport: request.transport,
      onProgress: (done, total) => request.onProgress?.('fetch', done, total),
    });
    return { fetched, dataBytes: rangeBytes(ranges) };
  } catch (error) {
    // Fine blocks that fail their records: the records lie (or the data changed; then the coarse level says so).
    if (!isZpumpError(error) || error.code !== 'E_VERIFY') throw error;
    problems.push(`fine blocks: ${error.message}`);
    return undefined;
  }
}
