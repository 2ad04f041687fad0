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

  constructor(
    private readonly index: BlockIndex,
    private readonly md4: Md4,
    private readonly out: Pick<OutputFile, 'writeBlock'>, // a view with another block size too (two-level fine blocks)
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
        this.complete(id, data, pos, blockLen); // the common case: a whole block in one piece
      } else {
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
  }

  private complete(id: number, buf: Uint8Array, pos: number, blockLen: number): void {
    if (this.known[id]) return; // a merged range may carry blocks we already have
    const idx = this.index;
    const weakOk = (weakSumPadded(buf, pos, pos + blockLen, idx.blockSize) & idx.mask) === idx.weak[id];
    if (!weakOk || !idx.strongMatches(id, md4Padded(this.md4, buf, pos, pos + blockLen, idx.blockSize))) {
      throw new ZpumpError('E_VERIFY', `${this.location} sent bytes for block ${id} (offset ${id * idx.blockSize}) that do not match the signature: the file on the server changed since the signature was made, or the server is faulty`, { data: { block: id, url: this.location } });
    }
    this.out.writeBlock(id, buf, pos);
    this.known[id] = 1;
    this.blocksWritten++;
  }
}
