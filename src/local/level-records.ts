// Block records of several block sizes from one chunk (a two-level announcement's fine and coarse
// signatures). The weak sum of a large block follows from the sums of the small blocks that make
// it up, so the bytes are summed once, for the finest level: for a block of n pieces of F bytes,
//   a = Σ a_i,   b = Σ (b_i + F·(n-1-i)·a_i)      (mod 2^16, zsync-format.md §4's a and b)
// since a byte at offset m of piece i is weighted F·(n-1-i) + (F - m) in the large block. The
// strong hash has no such shortcut: each level hashes its own blocks.

import { md4Padded, type Md4 } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import type { HashLengths } from '../format/hash-lengths.js';

export interface LevelShape {
  blockSize: number;
  hashLengths: HashLengths;
}

function emit(out: Uint8Array, at: number, sum: number, digest: Uint8Array, h: HashLengths): void {
  let o = at;
  for (let k = 4 - h.rsumBytes; k < 4; k++) out[o++] = (sum >>> (24 - 8 * k)) & 0xff;
  for (let k = 0; k < h.checksumBytes; k++) out[o++] = digest[k]!;
}

/**
 * Records of every level for `data`, which starts on a block boundary of each; a short tail (the
 * end of the file) is padded with zeros, as zsyncmake pads the last block. `outs[i]` receives
 * level i's records from record `firstRecords[i]` on.
 */
export function writeLevelRecords(md4: Md4, data: Uint8Array, levels: readonly LevelShape[], outs: readonly Uint8Array[], firstRecords: readonly number[]): void {
  const length = data.length;
  const finest = levels.reduce((best, l, i) => (l.blockSize < levels[best]!.blockSize ? i : best), 0);
  const F = levels[finest]!.blockSize;
  const pieces = Math.ceil(length / F);
  const sums = new Uint32Array(pieces);
  const fine = levels[finest]!;
  const fineLen = fine.hashLengths.rsumBytes + fine.hashLengths.checksumBytes;
  for (let i = 0, at = 0; i < pieces; i++, at += F) {
    const end = Math.min(at + F, length);
    sums[i] = weakSumPadded(data, at, end, F);
    emit(outs[finest]!, (firstRecords[finest]! + i) * fineLen, sums[i]!, md4Padded(md4, data, at, end, F), fine.hashLengths);
  }
  levels.forEach((level, li) => {
    if (li === finest) return;
    const B = level.blockSize;
    const recLen = level.hashLengths.rsumBytes + level.hashLengths.checksumBytes;
    const combine = B % F === 0;
    const n = B / F;
    for (let j = 0, at = 0; at < length; j++, at += B) {
      const end = Math.min(at + B, length);
      let sum: number;
      if (combine) {
        let a = 0;
        let b = 0;
        const first = j * n;
        // Pieces past the end of the data are zeros: a and b of 0.
        for (let i = 0; i < n && first + i < pieces; i++) {
          const s = sums[first + i]!;
          const ai = s >>> 16;
          a = (a + ai) | 0;
          b = (b + (s & 0xffff) + Math.imul(ai, (F * (n - 1 - i)) & 0xffff)) | 0;
        }
        sum = (((a & 0xffff) << 16) | (b & 0xffff)) >>> 0;
      } else {
        sum = weakSumPadded(data, at, end, B);
      }
      emit(outs[li]!, (firstRecords[li]! + j) * recLen, sum, md4Padded(md4, data, at, end, B), level.hashLengths);
    }
  });
}
