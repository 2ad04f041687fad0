// Streams seed files through the matcher in fixed windows (constant memory), then tries each
// still-missing block where it most likely sits: at its own offset (data rewritten in place)
// and at the offsets its matched neighbours moved by. zsync 0.6.2 with seq_matches 2 misses
// such isolated blocks; finding them is what makes large blocks usable with scattered edits.

import { open, type FileHandle } from 'node:fs/promises';
import type { BlockIndex } from '../engine/block-index.js';
import type { SeedMatcher } from '../engine/matcher.js';
import { md4Padded, type Md4 } from '../engine/md4.js';
import { weakSumPadded } from '../engine/rsum.js';
import { fromSystemError } from '../errors.js';

const WINDOW = 16 << 20;

export type BlockSink = (id: number, buf: Uint8Array, pos: number) => void;

export interface SeedScanner {
  index: BlockIndex;
  matcher: SeedMatcher;
  md4: Md4;
  /** Where each found block came from in the current seed, minus its target offset. */
  shift: Float64Array;
  sink: BlockSink;
  onProgress?: (seedBytesDone: number, seedBytesTotal: number) => void;
}

export async function scanSeedFile(path: string, s: SeedScanner): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    throw fromSystemError(error, 'cannot read the seed', path);
  }
  try {
    s.shift.fill(NaN);
    s.matcher.resetSeed();
    await slide(fh, path, s);
    if (!s.matcher.complete) await tryLikelyOffsets(fh, s);
  } finally {
    await fh.close();
  }
}

async function slide(fh: FileHandle, path: string, s: SeedScanner): Promise<void> {
  const B = s.index.blockSize;
  const ctx = s.index.seqMatches * B;
  const size = (await fh.stat()).size;
  const window = Math.max(WINDOW, 4 * ctx);
  const buf = new Uint8Array(window + ctx);
  let base = 0; // file offset of buf[0]
  let len = 0; // valid bytes in buf
  let pos = 0; // next window start, relative to buf
  const onBlock = (id: number, at: number): void => {
    s.shift[id] = base + at - id * B;
    s.sink(id, buf, at);
  };
  while (base + pos < size && !s.matcher.complete) {
    while (len < window && base + len < size) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, len, Math.min(window - len, size - base - len), base + len));
      } catch (error) {
        throw fromSystemError(error, 'cannot read the seed', path);
      }
      if (n === 0) break;
      len += n;
    }
    const atEnd = base + len >= size;
    // After the seed's last byte the windows see zeros, as zsync pads its buffer.
    if (atEnd) buf.fill(0, len, len + ctx);
    const limit = atEnd ? len : len - ctx;
    pos = s.matcher.scan(buf, pos, limit, onBlock);
    s.onProgress?.(Math.min(size, base + pos), size);
    if (atEnd) break;
    if (pos < len) {
      buf.copyWithin(0, pos, len);
      base += pos;
      len -= pos;
    } else {
      base += pos;
      len = 0;
    }
    pos = 0;
  }
}

async function tryLikelyOffsets(fh: FileHandle, s: SeedScanner): Promise<void> {
  const { index, matcher } = s;
  const B = index.blockSize;
  const size = (await fh.stat()).size;
  const block = new Uint8Array(B);
  let prevShift = 0;
  for (let id = 0; id < index.count; id++) {
    if (!Number.isNaN(s.shift[id]!)) { prevShift = s.shift[id]!; continue; }
    if (matcher.known[id]) continue;
    let nextShift = prevShift;
    for (let j = id + 1; j < index.count; j++) if (!Number.isNaN(s.shift[j]!)) { nextShift = s.shift[j]!; break; }
    for (const shift of new Set([0, prevShift, nextShift])) {
      const at = id * B + shift;
      if (at < 0 || at >= size) continue;
      const { bytesRead } = await fh.read(block, 0, B, at);
      const blockLen = Math.min(B, index.length - id * B);
      if (bytesRead < blockLen) continue;
      // The last block is compared with its zero padding, like the record was made.
      const end = blockLen;
      if (((weakSumPadded(block, 0, end, B) & index.mask) >>> 0) !== index.weak[id]) continue;
      if (!index.strongMatches(id, md4Padded(s.md4, block, 0, end, B))) continue;
      matcher.markKnown(id);
      s.shift[id] = shift;
      s.sink(id, block, 0);
      break;
    }
  }
}
