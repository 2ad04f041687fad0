// The per-block part of zsyncmake: each block's truncated weak sum and truncated MD4, written
// straight into the record array of the control file. Streaming: data may arrive in pieces of
// any size; whole blocks inside a piece take the fast path, a block split across pieces is
// summed incrementally.

import type { HashLengths } from '../format/hash-lengths.js';
import { md4Padded, type Md4 } from './md4.js';
import { weakSumPadded } from './rsum.js';

export class BlockRecordWriter {
  private readonly recLen: number;
  private readonly skip: number; // a record keeps the *trailing* rsumBytes of the 4-byte sum
  private out: number; // next byte to write in `records`
  private filled = 0; // bytes of the current, incomplete block seen so far
  private a = 0;
  private b = 0;

  constructor(
    private readonly md4: Md4,
    private readonly blockSize: number,
    private readonly h: HashLengths,
    private readonly records: Uint8Array,
    firstRecord: number,
  ) {
    this.recLen = h.rsumBytes + h.checksumBytes;
    this.skip = 4 - h.rsumBytes;
    this.out = firstRecord * this.recLen;
  }

  update(data: Uint8Array): void {
    const bs = this.blockSize;
    let pos = 0;
    if (this.filled > 0) pos = this.continueBlock(data, 0);
    for (; pos + bs <= data.length; pos += bs) {
      this.emit(weakSumPadded(data, pos, pos + bs, bs), md4Padded(this.md4, data, pos, pos + bs, bs));
    }
    if (pos < data.length) this.continueBlock(data, pos);
  }

  /** Pad and emit the last, short block, if any. */
  finish(): void {
    if (this.filled === 0) return;
    const pad = this.blockSize - this.filled;
    const zeros = new Uint8Array(Math.min(pad, 1 << 20));
    for (let left = pad; left > 0; left -= zeros.length) this.absorb(zeros.subarray(0, Math.min(left, zeros.length)), 0, Math.min(left, zeros.length));
    this.completeBlock();
  }

  private continueBlock(data: Uint8Array, pos: number): number {
    const take = Math.min(this.blockSize - this.filled, data.length - pos);
    this.absorb(data, pos, pos + take);
    if (this.filled === this.blockSize) this.completeBlock();
    return pos + take;
  }

  private absorb(data: Uint8Array, start: number, end: number): void {
    if (this.filled === 0) this.md4.init();
    let a = this.a;
    let b = this.b;
    for (let i = start; i < end; i++) {
      a = (a + data[i]!) | 0;
      b = (b + a) | 0;
    }
    this.a = a;
    this.b = b;
    this.md4.update(data.subarray(start, end));
    this.filled += end - start;
  }

  private completeBlock(): void {
    const sum = (((this.a & 0xffff) << 16) | (this.b & 0xffff)) >>> 0;
    this.emit(sum, this.md4.digest('binary'));
    this.a = this.b = this.filled = 0;
  }

  private emit(sum: number, digest: Uint8Array): void {
    const r = this.records;
    let o = this.out;
    for (let k = this.skip; k < 4; k++) r[o++] = (sum >>> (24 - 8 * k)) & 0xff;
    for (let k = 0; k < this.h.checksumBytes; k++) r[o++] = digest[k]!;
    this.out = o;
  }
}
