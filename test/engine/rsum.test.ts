import { describe, expect, it } from 'vitest';
import { rollWeakSum, weakMask, weakSum, weakSumPadded } from '../../src/engine/rsum.js';
import { lcg, seededBytes } from '../helpers/data.js';

const v3 = lcg(70000, 3);

describe('weak rolling sum', () => {
  it('matches the zsync-format.md vectors', () => {
    expect(weakSum(v3, 0, 2048).toString(16)).toBe('9245357');
    expect(weakSum(v3, 1, 2049).toString(16)).toBe('99dc4f4');
    expect(weakSum(v3, 1000, 3048).toString(16)).toBe('39057d');
    const hello = new TextEncoder().encode('Hello, zsync!\n');
    expect(weakSumPadded(hello, 0, hello.length, 2048).toString(16)).toBe('4a2f45d');
  });

  it('rolling byte by byte equals recomputing the window, for small and large blocks', () => {
    const data = seededBytes(300_000, 7);
    for (const size of [1024, 2048, 65536, 131072]) {
      const shift = Math.log2(size);
      let sum = weakSum(data, 0, size);
      for (let x = 1; x + size <= data.length && x < 5000; x++) {
        sum = rollWeakSum(sum, data[x - 1]!, data[x + size - 1]!, shift);
        expect(sum).toBe(weakSum(data, x, x + size));
      }
    }
  });

  it('gives the same sum on aligned and unaligned views (word path vs byte path)', () => {
    const data = seededBytes(10_000, 3);
    for (let start = 0; start < 8; start++) {
      const copy = new Uint8Array(data.length + 8);
      copy.set(data, start);
      expect(weakSum(copy, start, start + 4099)).toBe(weakSum(data, 0, 4099));
    }
  });

  it('equals the textbook definition, including all-0xff data (worst case for the SWAR lanes)', () => {
    const naive = (d: Uint8Array): number => {
      let a = 0;
      let b = 0;
      for (let i = 0; i < d.length; i++) { a += d[i]!; b += (d.length - i) * d[i]!; }
      return (((a % 65536) << 16) | (b % 65536)) >>> 0;
    };
    for (const d of [new Uint8Array(65536).fill(255), new Uint8Array(4096 + 12).fill(255), seededBytes(70_001, 5)]) {
      expect(weakSum(d, 0, d.length)).toBe(naive(d));
    }
  });

  it('padding with zeros equals summing explicit zeros', () => {
    const data = seededBytes(5000, 9);
    const padded = new Uint8Array(8192);
    padded.set(data);
    expect(weakSumPadded(data, 0, 5000, 8192)).toBe(weakSum(padded, 0, 8192));
  });

  it('masks keep what a record of that size stores', () => {
    expect(weakMask(2)).toBe(0xffff);
    expect(weakMask(3)).toBe(0xffffff);
    expect(weakMask(4) >>> 0).toBe(0xffffffff);
  });
});
