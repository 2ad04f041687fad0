// How many bytes of each checksum a .zsync keeps per block, exactly as zsyncmake 0.6.2 decides
// (zsync-format.md §3). Later upstream releases changed this rule; 0.6.2 is the compatible one,
// including its floating-point evaluation order, so keep the expressions as they are.

export interface HashLengths {
  seqMatches: 1 | 2; // 2: a block is accepted only together with its successor
  rsumBytes: number; // 1..4 trailing bytes of the 4-byte weak sum
  checksumBytes: number; // 3..16 leading bytes of the block's MD4
}

export function zsyncmakeHashLengths(length: number, blockSize: number): HashLengths {
  const seqMatches = length > blockSize ? 2 : 1;
  const lnL = Math.log(length);
  const nb = Math.floor(length / blockSize);
  let rsumBytes = Math.ceil(((lnL + Math.log(blockSize)) / Math.log(2) - 8.6) / seqMatches / 8);
  if (rsumBytes > 4) rsumBytes = 4;
  if (rsumBytes < 2 || Number.isNaN(rsumBytes)) rsumBytes = 2;
  let checksumBytes = Math.ceil((20 + (lnL + Math.log(1 + nb)) / Math.log(2)) / seqMatches / 8);
  const floor2 = Math.trunc((7.9 + (20 + Math.log(1 + nb) / Math.log(2))) / 8);
  if (!(checksumBytes >= floor2)) checksumBytes = floor2; // also catches NaN/-Infinity for L = 0
  return { seqMatches, rsumBytes, checksumBytes };
}

/** zsyncmake's default block size: 2048 below 100 000 000 bytes, 4096 from there. */
export function zsyncmakeDefaultBlockSize(length: number): number {
  return length < 100_000_000 ? 2048 : 4096;
}

export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/** Bytes the block records take for this length and block size (header excluded). */
export function recordBytes(length: number, blockSize: number): number {
  const h = zsyncmakeHashLengths(length, blockSize);
  return blockCount(length, blockSize) * (h.rsumBytes + h.checksumBytes);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export const AUTO_MIN_BLOCK_SIZE = 4096;
export const AUTO_MAX_BLOCK_SIZE = 2 ** 30;
// The header of a .zsync is a few hundred bytes; leave room for it inside the budget.
const HEADER_ALLOWANCE = 512;

/**
 * The smallest power of two >= 4 KiB whose whole signature fits `budget` bytes, so signatures
 * stay small enough to ride inside announcements (DESIGN.md: --block-size auto).
 */
export function autoBlockSize(length: number, budget: number): number {
  let size = AUTO_MIN_BLOCK_SIZE;
  while (size < AUTO_MAX_BLOCK_SIZE && recordBytes(length, size) + HEADER_ALLOWANCE > budget) size *= 2;
  return size;
}
