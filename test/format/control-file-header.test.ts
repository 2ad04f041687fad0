// The header-only entry point a two-level sync reads its fine .zsync with: from a first piece,
// asking for more when the header is longer, refusing what is not a header.

import { describe, expect, it } from 'vitest';
import { parseControlFile, parseControlFileHeader, renderControlFile, MAX_HEADER_BYTES } from '../../src/format/control-file.js';

const records = new Uint8Array(5 * 6).map((_, i) => i);
const file = renderControlFile({
  zsyncVersion: '0.6.2', filename: 'a.bin', blockSize: 2048, length: 9000, hashLengths: { seqMatches: 2, rsumBytes: 2, checksumBytes: 4 },
  urls: ['a.bin'], sha1: 'ab'.repeat(20), extraHeaders: [], records,
});

describe('parseControlFileHeader', () => {
  it('parses the header of a piece that holds it, records or not, and says where record 0 starts', () => {
    const whole = parseControlFile(file);
    const end = file.length - records.length;
    for (const piece of [file, file.subarray(0, end), file.subarray(0, end + 7)]) {
      const parsed = parseControlFileHeader(piece)!;
      expect(parsed.headerLength).toBe(end);
      expect(parsed.control.records.length).toBe(0);
      expect({ ...parsed.control, records: whole.records }).toEqual(whole);
    }
  });

  it('asks for more when the piece ends inside the header, refuses a header that never ends', () => {
    expect(parseControlFileHeader(file.subarray(0, 40))).toBeUndefined();
    expect(() => parseControlFileHeader(new Uint8Array(MAX_HEADER_BYTES).fill(0x41))).toThrow(/no empty line/);
    expect(() => parseControlFileHeader(new TextEncoder().encode('not a zsync file\n\n'))).toThrow(/not a zsync control file/);
  });
});
