// Fetched bytes → verified blocks in the output file. Pieces arrive at any size; each block is
// collected, checked against its weak sum and MD4 prefix, and only then written. A server that
// sends wrong bytes is caught here, block by block, before the whole-file SHA-1.

import type { BlockIndex } from '../engine/block-index.js';
import { md4Padded, type Md4 } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import { ZpumpError } from '../errors.js';
import type { RangeChunk } from '../transport/types.js';
import type { OutputFile } from './output-file.js';

export class BlockAssembler {
  private readonly partial = new Map<number, { buf: Uint8Array; filled: number }>();
  private readonly spare: Uint8Array[] = [];
  blocksWritten = 0;
  /** Test hook: write calls made (whole blocks in one piece go out together, one call per run). */
  writes = 0;
  /** A run of checked whole blocks of the current piece not written yet: ids [runFirst, runEnd), at data[runPos...). */
  private runFirst = 0;
  private runEnd = 0;
  private runPos = 0;
  private runData: Uint8Array | undefined;

  constructor(
    private readonly index: BlockIndex,
    private readonly md4: Md4,
    private readonly out: Pick<OutputFile, 'writeBlock'> & Partial<Pick<OutputFile, 'writeAt'>>, // a view with another block size too (two-level fine blocks)
    private readonly known: Uint8Array,
    private readonly location: string,
  ) {}

  accept(chunk: RangeChunk): void {
    const B = this.index.blockSize;
    const data = chunk.data;
    let offset = chunk.offset;
    let pos = 0;
    while (pos < data.length) {
      const id = Math.floor(offset / B);
      const blockStart = id * B;
      const blockLen = Math.min(B, this.index.length - blockStart);
      const within = offset - blockStart;
      const take = Math.min(blockLen - within, data.length - pos);
      if (within === 0 && take === blockLen && !this.partial.has(id)) {
        // The common case, a whole block in one piece: checked now, written with its neighbours
        // (one write for a run: 2 KiB blocks made one syscall each, half a million per GiB).
        if (this.check(id, data, pos, blockLen)) this.extendRun(id, data, pos);
        else this.flushRun();
      } else {
        this.flushRun();
        let p = this.partial.get(id);
        if (!p) { p = { buf: this.spare.pop() ?? new Uint8Array(B), filled: 0 }; this.partial.set(id, p); }
        p.buf.set(data.subarray(pos, pos + take), within);
        p.filled += take;
        if (p.filled === blockLen) {
          this.partial.delete(id);
          this.complete(id, p.buf, 0, blockLen);
          // Reused: a fresh block-sized buffer per split block kept tens of MB of garbage alive.
          if (this.spare.length < 8) this.spare.push(p.buf);
        }
      }
      pos += take;
      offset += take;
    }
    this.flushRun();
  }

  private extendRun(id: number, data: Uint8Array, pos: number): void {
    if (this.runData === data && this.runEnd === id && this.out.writeAt) {
      this.runEnd = id + 1;
      return;
    }
    this.flushRun();
    this.runData = data;
    this.runFirst = id;
    this.runEnd = id + 1;
    this.runPos = pos;
  }

  private flushRun(): void {
    const data = this.runData;
    if (!data) return;
    this.runData = undefined;
    const B = this.index.blockSize;
    const n = this.runEnd - this.runFirst;
    this.writes++;
    if (n === 1 || !this.out.writeAt) this.out.writeBlock(this.runFirst, data, this.runPos);
    else this.out.writeAt(this.runFirst * B, data.subarray(this.runPos, this.runPos + Math.min(n * B, this.index.length - this.runFirst * B)));
    for (let id = this.runFirst; id < this.runEnd; id++) this.known[id] = 1;
    this.blocksWritten += n;
  }

  private complete(id: number, buf: Uint8Array, pos: number, blockLen: number): void {
    if (!this.check(id, buf, pos, blockLen)) return;
    this.out.writeBlock(id, buf, pos);
    this.known[id] = 1;
    this.blocksWritten++;
    this.writes++;
  }

  /** Is block `id` still wanted? Throws when the bytes are not the block's. */
  private check(id: number, buf: Uint8Array, pos: number, blockLen: number): boolean {
    if (this.known[id]) return false; // a merged range may carry blocks we already have
    const idx = this.index;
    const weakOk = (weakSumPadded(buf, pos, pos + blockLen, idx.blockSize) & idx.mask) === idx.weak[id];
    if (!weakOk || !idx.strongMatches(id, md4Padded(this.md4, buf, pos, pos + blockLen, idx.blockSize))) {
      this.flushRun(); // the blocks before it were good: kept, as they were when written one by one
      throw new ZpumpError('E_VERIFY', `${this.location} sent bytes for block ${id} (offset ${id * idx.blockSize}) that do not match the signature: the file on the server changed since the signature was made, or the server is faulty`, { data: { block: id, url: this.location } });
    }
    return true;
  }
}
