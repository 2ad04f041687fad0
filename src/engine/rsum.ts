// zsync's weak checksum (rsync's rolling sum, zsync-format.md §4) over a window of B bytes:
//   a = Σ x[i] mod 2^16,  b = Σ (B - i)·x[i] mod 2^16.
// Packed as one uint32 (a << 16 | b), the same 4 bytes the .zsync stores big-endian.
// Adding prefix sums (b += a after each byte) gives Σ (B - i)·x[i] without a multiply; int32
// wrap-around is harmless since only the low 16 bits count (4a can overflow: still fine mod 2^16).

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function weakSum(data: Uint8Array, start: number, end: number): number {
  return weakSumPadded(data, start, end, end - start);
}

/** Weak sum of data[start, end) followed by zero bytes up to blockSize (the short last block). */
export function weakSumPadded(data: Uint8Array, start: number, end: number, blockSize: number): number {
  let a = 0;
  let b = 0;
  let i = start;
  // Aligned words go through a SWAR path (two 16-bit lanes per 32-bit integer): about twice as
  // fast as byte by byte here. Per word x = [x0 x1 x2 x3] in memory order, `lo` holds x0 and x2,
  // `hi` holds x1 and x3; b gains 4·a + 4x0 + 3x1 + 2x2 + x3. Lanes are flushed every 16 words,
  // before the running sums of sums could carry from one lane into the other.
  if (LITTLE_ENDIAN && ((data.byteOffset + start) & 3) === 0 && end - start >= 4) {
    const words = new Uint32Array(data.buffer, data.byteOffset + start, (end - start) >>> 2);
    const n = words.length;
    for (let k = 0; k < n; ) {
      const stop = Math.min(n, k + 16);
      const count = stop - k;
      let sumLo = 0;
      let sumHi = 0;
      let sumsLo = 0;
      let sumsHi = 0;
      for (; k < stop; k++) {
        const x = words[k]!;
        sumsLo += sumLo;
        sumsHi += sumHi;
        sumLo += x & 0x00ff00ff;
        sumHi += (x >>> 8) & 0x00ff00ff;
      }
      const x0 = sumLo & 0xffff;
      const x2 = sumLo >>> 16;
      const x1 = sumHi & 0xffff;
      const x3 = sumHi >>> 16;
      const before = (sumsLo & 0xffff) + (sumsLo >>> 16) + (sumsHi & 0xffff) + (sumsHi >>> 16);
      b = (b + 4 * (count * a + before) + 4 * x0 + 3 * x1 + 2 * x2 + x3) | 0;
      a = (a + x0 + x1 + x2 + x3) | 0;
    }
    i = start + n * 4;
  }
  for (; i < end; i++) {
    a = (a + data[i]!) | 0;
    b = (b + a) | 0;
  }
  // Each padding zero adds the running `a` to b once more.
  const pad = blockSize - (end - start);
  if (pad > 0) b = (b + Math.imul(a & 0xffff, pad & 0xffff)) | 0;
  return (((a & 0xffff) << 16) | (b & 0xffff)) >>> 0;
}

/**
 * Slide the window one byte: drop `out`, add `inb`. `shift` = log2(blockSize); for blocks of
 * 64 KiB and more the shifted term vanishes mod 2^16, exactly as in zsync.
 */
export function rollWeakSum(sum: number, out: number, inb: number, shift: number): number {
  const a = ((sum >>> 16) + inb - out) & 0xffff;
  const b = ((sum & 0xffff) + a - (shift < 16 ? out << shift : 0)) & 0xffff;
  return ((a << 16) | b) >>> 0;
}

/** The mask that keeps what a record of `rsumBytes` stores: the trailing bytes of (a, b). */
export function weakMask(rsumBytes: number): number {
  if (rsumBytes >= 4) return 0xffffffff;
  if (rsumBytes === 3) return 0x00ffffff;
  // One byte keeps b's low byte only (zsync 0.6.2 compares all of b then, so never matches).
  if (rsumBytes === 1) return 0x000000ff;
  return 0x0000ffff;
}
