import { describe, expect, it } from 'vitest';
import { autoBlockSize, recordBytes, zsyncmakeDefaultBlockSize, zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';

// Values measured with zsyncmake 0.6.2 (zsync-format.md §3).
const measured: Array<[number, number, string]> = [
  [0, 2048, '1,2,3'], [14, 2048, '1,2,3'], [511, 65536, '1,3,4'], [513, 512, '2,2,3'], [2048, 2048, '1,2,4'],
  [2049, 2048, '2,2,3'], [4096, 4096, '1,2,5'], [4096, 8192, '1,3,4'], [4097, 4096, '2,2,3'], [4097, 8192, '1,3,5'],
  [10000, 512, '2,2,4'], [65536, 4096, '2,2,3'], [131072, 131072, '1,4,5'], [1_000_000, 2048, '2,2,4'],
  [3_000_001, 512, '2,2,5'], [99_999_999, 2048, '2,2,5'], [100_000_000, 4096, '2,2,5'], [500_000_000, 4096, '2,3,5'],
  [4_500_000_000, 4096, '2,3,5'], [100, 1048576, '1,3,4'], [5000, 65536, '1,3,5'], [1048576, 1048576, '1,4,6'],
  [1_000_003, 1048576, '1,4,5'], [104_857_600, 65536, '2,3,4'], [104_857_600, 2048, '2,2,5'],
];

describe('zsyncmakeHashLengths', () => {
  it.each(measured)('length %i, block %i → %s', (length, block, expected) => {
    const h = zsyncmakeHashLengths(length, block);
    expect(`${h.seqMatches},${h.rsumBytes},${h.checksumBytes}`).toBe(expected);
  });
});

describe('block sizes', () => {
  it('follows zsyncmake defaults at the 100 000 000 byte boundary', () => {
    expect(zsyncmakeDefaultBlockSize(99_999_999)).toBe(2048);
    expect(zsyncmakeDefaultBlockSize(100_000_000)).toBe(4096);
  });

  it('auto picks the smallest power of two >= 4k whose signature fits the budget', () => {
    const gib = 2 ** 30;
    const size = autoBlockSize(gib, 64 * 1024);
    expect(recordBytes(gib, size) + 512).toBeLessThanOrEqual(64 * 1024);
    expect(recordBytes(gib, size / 2) + 512).toBeGreaterThan(64 * 1024);
    expect(autoBlockSize(2 << 20, 64 * 1024)).toBe(4096);
    expect(autoBlockSize(10, 1)).toBe(64 * 2 ** 20); // cannot fit: the largest block size
  });
});
