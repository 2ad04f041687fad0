// Missing blocks → byte ranges to fetch. Neighbouring blocks merge into one range, and so do
// ranges separated by a small gap, where one range costs less than two (a multipart header is
// ~100 bytes; a request's round trip far more). The last range stops at the file's end: zsync
// 0.6.2 asks past it, which some servers answer with 416 or 200.

import type { ByteRange } from '../transport/types.js';

export function planRanges(known: Uint8Array, blockSize: number, length: number, mergeGapBytes = 0): ByteRange[] {
  const ranges: ByteRange[] = [];
  const gapBlocks = Math.floor(mergeGapBytes / blockSize);
  let i = 0;
  const n = known.length;
  while (i < n) {
    if (known[i]) { i++; continue; }
    let j = i;
    while (j < n && !known[j]) j++;
    const start = i * blockSize;
    const end = Math.min(j * blockSize, length);
    const prev = ranges[ranges.length - 1];
    if (prev && start - prev.end <= gapBlocks * blockSize) prev.end = end;
    else ranges.push({ start, end });
    i = j;
  }
  return ranges;
}

export function rangeBytes(ranges: readonly ByteRange[]): number {
  let total = 0;
  for (const r of ranges) total += r.end - r.start;
  return total;
}
