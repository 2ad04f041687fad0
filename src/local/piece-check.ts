// Which target blocks a piece of a local copy holds, block k of the piece where target block
// first + k would start: one weak sum per block, the strong hash only where it agrees. Shared by
// the worker threads (local/places-worker.ts) and this thread when it lends a hand.

import { md4Padded } from '../engine/md4.js';
import { weakMask, weakSumPadded } from '../engine/rsum.js';
import type { StrongHasher } from '../engine/strong-hash.js';
import type { HashLengths } from '../format/hash-lengths.js';

/** What a check needs of a signature's blocks (engine/block-index.ts has it too). */
export interface BlockRecords {
  readonly blockSize: number;
  readonly length: number;
  readonly mask: number;
  /** Masked weak sum of each block, as int32. */
  readonly weak: Int32Array;
  strongMatches(id: number, digest: Uint8Array): boolean;
}

/** A control file's records seen as BlockRecords, without the scan's hash chains. */
export class RecordsView implements BlockRecords {
  readonly mask: number;
  readonly weak: Int32Array;
  private readonly recLen: number;

  constructor(readonly blockSize: number, readonly length: number, private readonly h: HashLengths, private readonly records: Uint8Array) {
    this.mask = weakMask(h.rsumBytes) | 0;
    this.recLen = h.rsumBytes + h.checksumBytes;
    const count = Math.ceil(length / blockSize);
    this.weak = new Int32Array(count);
    for (let i = 0, o = 0; i < count; i++, o += this.recLen) {
      let v = 0;
      for (let k = 0; k < h.rsumBytes; k++) v = (v << 8) | records[o + k]!;
      this.weak[i] = v | 0;
    }
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
    if ((weakSumPadded(data, pos, pos + len, B) & r.mask) !== r.weak[id]) continue;
    strong++;
    if (r.strongMatches(id, md4Padded(hasher, data, pos, pos + len, B))) found[k] = 1;
  }
  return strong;
}
