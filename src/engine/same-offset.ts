// Which blocks of the new version the local copy already holds at the same offset, told by
// comparing the signature the copy was applied with against the new one, record by record:
// no byte of the copy is read. Only signatures of the same geometry compare (block size, hash
// lengths, block hash); anything else gives undefined and the caller scans as usual.

import { recordLength, strongHashOf, type ControlFile } from '../format/control-file.js';

export function sameOffsetBlocks(previous: ControlFile, next: ControlFile): Uint8Array | undefined {
  const a = previous.hashLengths;
  const b = next.hashLengths;
  if (previous.blockSize !== next.blockSize || a.rsumBytes !== b.rsumBytes || a.checksumBytes !== b.checksumBytes || a.seqMatches !== b.seqMatches) return undefined;
  if (strongHashOf(previous) !== strongHashOf(next) || previous.gzip || next.gzip) return undefined;
  const recLen = recordLength(b);
  const count = Math.ceil(next.length / next.blockSize);
  const before = Math.ceil(previous.length / previous.blockSize);
  if (previous.records.length < before * recLen || next.records.length < count * recLen) return undefined;
  // A record covers its block zero-padded to the block size, and the copy is cut or extended with
  // zeros to the new length: equal records mean equal bytes wherever the block ends.
  const known = new Uint8Array(count);
  for (let i = 0; i < Math.min(count, before); i++) {
    const o = i * recLen;
    let same = true;
    for (let k = 0; k < recLen; k++) {
      if (previous.records[o + k] !== next.records[o + k]) { same = false; break; }
    }
    if (same) known[i] = 1;
  }
  return known;
}
