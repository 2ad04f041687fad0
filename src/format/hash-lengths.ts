// How many bytes of each checksum a .zsync keeps per block, exactly as zsyncmake 0.6.2 decides (and, for spec 0.8 files, as upstream 0.7+ does)
// (zsync-format.md §3). Later upstream releases changed this rule; 0.6.2 is the compatible one,
// including its floating-point evaluation order, so keep the expressions as they are.

export interface HashLengths {
  seqMatches: 1 | 2; // 2: a block is accepted only together with its successor
  rsumBytes: number; // 1..4 trailing bytes of the 4-byte weak sum
  checksumBytes: number; // leading bytes of the block's strong hash: 3..16 for MD4 and MD5, 3..28 for SHA-224
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

/**
 * Hash-Lengths as upstream zsyncmake 0.7+ writes spec 0.8 files: all 4 weak-sum bytes, the whole
 * digest, and match continuation above 400 MB (its stand-in for the 0.6.2 estimate).
 */
export function spec08HashLengths(length: number, digestBytes: number): HashLengths {
  return { seqMatches: length > 400_000_000 ? 2 : 1, rsumBytes: 4, checksumBytes: digestBytes };
}

/** zsyncmake's default block size: 2048 below 100 000 000 bytes, 4096 from there. */
export function zsyncmakeDefaultBlockSize(length: number): number {
  return length < 100_000_000 ? 2048 : 4096;
}

export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/**
 * Bytes the block records take for this length and block size (header excluded): zsyncmake
 * 0.6.2's Hash-Lengths, or a fixed record length (spec 0.8 files: 4 + the digest length).
 */
export function recordBytes(length: number, blockSize: number, fixedRecord?: number): number {
  const h = zsyncmakeHashLengths(length, blockSize);
  return blockCount(length, blockSize) * (fixedRecord ?? h.rsumBytes + h.checksumBytes);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * The largest block zpump makes or accepts. Both engines hold whole blocks in memory (a seed
 * window of two blocks, a block being fetched, a padded last block), so a 1 GiB block meant
 * gigabytes of RSS or a crash; and from 64 KiB up the weak sum already loses the outgoing byte
 * (zsync-format.md §11), so ever larger blocks only buy slower, weaker matching.
 */
export const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
/** Offsets stay exact in a JS number and far from what a file system allows. */
export const MAX_LENGTH = 2 ** 52 - 1;
/** Per block the engine keeps ~30 bytes of index; beyond this count that is over a gigabyte. */
export const MAX_BLOCKS = 2 ** 25;

/** Why the engine cannot hold a file of this geometry, or undefined when it can. */
export function geometryProblem(length: number, blockSize: number): string | undefined {
  if (!isPowerOfTwo(blockSize) || blockSize > MAX_BLOCK_SIZE) return `Blocksize must be a power of two up to ${MAX_BLOCK_SIZE} (64 MiB), got ${blockSize}`;
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_LENGTH) return `Length ${length} is beyond the ${MAX_LENGTH} bytes (2^52 - 1) zpump handles`;
  const blocks = blockCount(length, blockSize);
  if (blocks > MAX_BLOCKS) return `Length ${length} in blocks of ${blockSize} makes ${blocks} blocks, more than the ${MAX_BLOCKS} zpump keeps in memory; use larger blocks`;
  return undefined;
}

export const AUTO_MIN_BLOCK_SIZE = 4096;
export const AUTO_MAX_BLOCK_SIZE = MAX_BLOCK_SIZE;
// The header of a .zsync is a few hundred bytes; leave room for it inside the budget.
const HEADER_ALLOWANCE = 512;

/**
 * The smallest power of two >= 4 KiB whose whole signature fits `budget` bytes, so signatures
 * stay small enough to ride inside announcements (DESIGN.md: --block-size auto).
 */
export function autoBlockSize(length: number, budget: number, fixedRecord?: number): number {
  let size = AUTO_MIN_BLOCK_SIZE;
  while (size < AUTO_MAX_BLOCK_SIZE && recordBytes(length, size, fixedRecord) + HEADER_ALLOWANCE > budget) size *= 2;
  return size;
}
