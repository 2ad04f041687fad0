// Reading what spec 0.8 and zsync 0.6.2 allow beyond zsyncmake 0.6.2's own output
// (zsync-format.md §6.1, §11): each case is a hand-made control file.

import { describe, expect, it } from 'vitest';
import { ZpumpError } from '../../src/errors.js';
import { parseControlFile, renderControlFile, wholeFileChecks } from '../../src/format/control-file.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const file = (lines: string[], recordBytes: number, tail: number[] = []): Uint8Array =>
  new Uint8Array([...text(lines.join('\n') + '\n\n'), ...new Uint8Array(recordBytes).map((_, i) => (i * 7) & 0xff), ...tail]);
const sha256 = 'ab'.repeat(32);
// As upstream zsyncmake 0.7+ writes it (header order and spelling), 3 blocks of 2048.
const upstream = (hash: string, lengths: string): string[] => [
  'zsync: 0.8.0', 'Filename: f.bin', 'MTime: Thu, 02 Jan 2020 03:04:05 +0000', 'Blocksize: 2048', 'Length: 5000',
  `Safe: File-Hash${hash === 'MD4' ? ',Strong-Hash-Algorithm' : ''}`, `Hash-Lengths: ${lengths}`, `Strong-Hash-Algorithm: ${hash}`,
  `File-Hash: SHA-256:${sha256}`, 'URL: http://a.example/f.bin', 'URL: http://b.example/f.bin',
];
const v062 = ['zsync: 0.6.2', 'Filename: f', 'Blocksize: 2048', 'Length: 5000', 'Hash-Lengths: 2,2,4', 'URL: f', 'SHA-1: ' + '0'.repeat(40)];
const swap = (lines: string[], key: string, line: string | undefined): string[] =>
  lines.flatMap((l) => (l.startsWith(key) ? (line === undefined ? [] : [line]) : [l]));

function refusal(bytes: Uint8Array): ZpumpError {
  try {
    parseControlFile(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ZpumpError);
    return error as ZpumpError;
  }
  throw new Error('expected the parser to refuse this input');
}

describe('control file: spec 0.8', () => {
  it.each([
    ['MD4', '1,4,16', 20],
    ['MD5', '1,4,16', 20],
    ['SHA-224', '1,4,28', 32],
  ])('reads a %s file as upstream writes it, and renders it back byte for byte', (hash, lengths, recLen) => {
    const bytes = file(upstream(hash, lengths), 3 * recLen);
    const cf = parseControlFile(bytes);
    expect(cf.strongHash).toBe(hash);
    expect(cf.hashLengths.checksumBytes).toBe(recLen - 4);
    expect(cf.fileHash).toEqual({ algorithm: 'SHA-256', hex: sha256 });
    expect(wholeFileChecks(cf)).toEqual({ sha256 });
    expect(cf.urls).toEqual(['http://a.example/f.bin', 'http://b.example/f.bin']);
    expect(cf.notes).toBeUndefined();
    expect(Buffer.from(renderControlFile(cf)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('ignores bytes after the records (upstream test data has one stray byte), and notes them', () => {
    for (const tail of [[0x0a], Array.from({ length: 100 }, (_, i) => i)]) {
      const cf = parseControlFile(file(upstream('MD4', '1,4,16'), 60, tail));
      expect(cf.records.length).toBe(60);
      expect(cf.notes?.join(' ')).toMatch(new RegExp(`${tail.length} bytes after the 3 block records.*ignored`));
    }
  });

  it('defaults an absent Hash-Lengths to 1,4,<digest length>', () => {
    expect(parseControlFile(file(swap(upstream('MD4', ''), 'Hash-Lengths', undefined), 60)).hashLengths).toEqual({ seqMatches: 1, rsumBytes: 4, checksumBytes: 16 });
    expect(parseControlFile(file(swap(upstream('SHA-224', ''), 'Hash-Lengths', undefined), 96)).hashLengths).toEqual({ seqMatches: 1, rsumBytes: 4, checksumBytes: 28 });
    // zsync 0.6.2's own default is the same for MD4 (no Strong-Hash-Algorithm header).
    expect(parseControlFile(file(swap(v062, 'Hash-Lengths', undefined), 60)).hashLengths).toEqual({ seqMatches: 1, rsumBytes: 4, checksumBytes: 16 });
  });

  it('accepts strong lengths up to the digest, and refuses longer ones with the limit named', () => {
    expect(parseControlFile(file(upstream('SHA-224', '2,3,20'), 69)).hashLengths).toEqual({ seqMatches: 2, rsumBytes: 3, checksumBytes: 20 });
    expect(refusal(file(upstream('SHA-224', '1,4,29'), 99)).message).toMatch(/strong checksum bytes must be 3..28 for SHA-224, got 29/);
    expect(refusal(file(upstream('MD5', '1,4,17'), 63)).message).toMatch(/3..16 for MD5, got 17/);
    expect(refusal(file(swap(v062, 'Hash-Lengths', 'Hash-Lengths: 2,2,17'), 57)).message).toMatch(/3..16 for MD4/);
  });

  it('refuses a strong hash it does not know (exit 2 class), even under Safe:', () => {
    const lines = swap(upstream('MD4', '1,4,16'), 'Strong-Hash-Algorithm', 'Strong-Hash-Algorithm: SHA-1');
    const error = refusal(file(lines, 60));
    expect(error.code).toBe('E_UNSUPPORTED');
    expect(error.message).toMatch(/strong hash "SHA-1"; zpump reads MD4, MD5 and SHA-224/);
  });

  it('keeps a File-Hash in an unknown algorithm unverified, and says so', () => {
    const cf = parseControlFile(file(swap(upstream('MD4', '1,4,16'), 'File-Hash', 'File-Hash: BLAKE3:00ff'), 60));
    expect(wholeFileChecks(cf)).toEqual({ unverified: 'BLAKE3' });
    expect(cf.notes?.join(' ')).toMatch(/BLAKE3, which zpump cannot compute: the result is not verified/);
  });

  it('verifies File-Hash SHA-1 like the SHA-1 header, and refuses malformed hex for known algorithms', () => {
    const cf = parseControlFile(file(swap(upstream('MD4', '1,4,16'), 'File-Hash', `File-Hash: SHA-1:${'C'.repeat(40)}`), 60));
    expect(wholeFileChecks(cf)).toEqual({ sha1: 'c'.repeat(40) });
    expect(refusal(file(swap(upstream('MD4', '1,4,16'), 'File-Hash', 'File-Hash: SHA-256:abcd'), 60)).message).toMatch(/SHA-256 must be 64 hex digits/);
    expect(refusal(file(swap(upstream('MD4', '1,4,16'), 'File-Hash', 'File-Hash: nonsense'), 60)).message).toMatch(/"ALGORITHM:hex"/);
  });
});

describe("control file: zsync 0.6.2's leniencies", () => {
  it('ignores an MTime it cannot parse, and notes it', () => {
    const cf = parseControlFile(file(swap(v062, 'Filename', 'MTime: <not a date>'), 18));
    expect(cf.mtime).toBeUndefined();
    expect(cf.notes?.join(' ')).toMatch(/MTime "<not a date>" is not an RFC 2822 date: ignored/);
  });

  it('reads Hash-Lengths with spaces, as sscanf does', () => {
    expect(parseControlFile(file(swap(v062, 'Hash-Lengths', 'Hash-Lengths: 2, 2, 4'), 18)).hashLengths).toEqual({ seqMatches: 2, rsumBytes: 2, checksumBytes: 4 });
    expect(parseControlFile(file(swap(v062, 'Hash-Lengths', 'Hash-Lengths:  1 ,1,  3'), 12)).hashLengths).toEqual({ seqMatches: 1, rsumBytes: 1, checksumBytes: 3 });
  });
});
