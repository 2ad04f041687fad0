// Which target blocks a piece of a local copy holds, block k of the piece where target block
// first + k would start: one weak sum per block, the strong hash only where it agrees. Shared by
// the worker threads (local/places-worker.ts) and this thread when it lends a hand.

import { md4Padded } from '../engine/md4.js';
import { weakMask, weakSumPadded } from '../engine/rsum.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import type { BlockIndex } from '../engine/block-index.js';
import type { HashLengths } from '../format/hash-lengths.js';

/** What a check needs of a signature's blocks. */
export interface BlockRecords {
  readonly blockSize: number;
  readonly length: number;
  readonly mask: number;
  /** Masked weak sum of block `id`'s record, as int32. */
  weakOf(id: number): number;
  strongMatches(id: number, digest: Uint8Array): boolean;
}

/** A control file's records seen as BlockRecords, read where they are (no copy, no hash chains). */
export class RecordsView implements BlockRecords {
  readonly mask: number;
  private readonly recLen: number;

  constructor(readonly blockSize: number, readonly length: number, private readonly h: HashLengths, private readonly records: Uint8Array) {
    this.mask = weakMask(h.rsumBytes) | 0;
    this.recLen = h.rsumBytes + h.checksumBytes;
  }

  weakOf(id: number): number {
    const o = id * this.recLen;
    let v = 0;
    for (let k = 0; k < this.h.rsumBytes; k++) v = (v << 8) | this.records[o + k]!;
    return v | 0;
  }

  strongMatches(id: number, digest: Uint8Array): boolean {
    const o = id * this.recLen + this.h.rsumBytes;
    for (let k = 0; k < this.h.checksumBytes; k++) if (digest[k] !== this.records[o + k]) return false;
    return true;
  }
}

/** 1 in `found` for each wanted block of data[0, got) that matches; returns the strong hashes computed. */
export function checkPiece(r: BlockRecords, hasher: StrongHasher, data: Uint8Array, got: number, first: number, wanted: Uint8Array, found: Uint8Array): number {
  const B = r.blockSize;
  let strong = 0;
  for (let k = 0; k < wanted.length; k++) {
    if (!wanted[k]) continue;
    const id = first + k;
    const pos = k * B;
    const len = Math.min(B, r.length - id * B);
    if (got - pos < len) break;
    // The last block is compared with its zero padding, as its record was made.
    if ((weakSumPadded(data, pos, pos + len, B) & r.mask) !== r.weakOf(id)) continue;
    strong++;
    if (r.strongMatches(id, md4Padded(hasher, data, pos, pos + len, B))) found[k] = 1;
  }
  return strong;
}

/** A scan's block index seen as BlockRecords. */
export function indexRecords(index: BlockIndex): BlockRecords {
  return { blockSize: index.blockSize, length: index.length, mask: index.mask, weakOf: (id) => index.weak[id]!, strongMatches: (id, d) => index.strongMatches(id, d) };
}
