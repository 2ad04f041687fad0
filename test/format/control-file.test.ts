import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlockRecordWriter } from '../../src/engine/block-records.js';
import { createMd4 } from '../../src/engine/md4.js';
import { ZpumpError } from '../../src/errors.js';
import { parseControlFile, renderControlFile, type ControlFile } from '../../src/format/control-file.js';
import { zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';
import { lcg, mod251 } from '../helpers/data.js';

const sha1 = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');
const MTIME = Date.UTC(2020, 0, 2, 3, 4, 5) / 1000;

async function controlFor(name: string, data: Uint8Array, blockSize: number): Promise<ControlFile> {
  const hashLengths = zsyncmakeHashLengths(data.length, blockSize);
  const records = new Uint8Array(Math.ceil(data.length / blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes));
  const writer = new BlockRecordWriter(await createMd4(), blockSize, hashLengths, records, 0);
  writer.update(data);
  writer.finish();
  return { zsyncVersion: '0.6.2', filename: name, mtime: MTIME, blockSize, length: data.length, hashLengths, urls: [`http://example.com/${name}`], sha1: sha1(data), extraHeaders: [], records };
}

// zsync-format.md §9: size and SHA-1 of the whole .zsync that zsyncmake 0.6.2 wrote.
const vectors: Array<[string, Uint8Array, number, number, string]> = [
  ['v1.txt', new TextEncoder().encode('Hello, zsync!\n'), 2048, 201, '00d8a57a347799af56418e83e4b77b91009527fa'],
  ['v2.bin', mod251(5000), 1024, 223, '16e7edd70ec874372b68ee0c971fb289411a4288'],
  ['v3.bin', lcg(70000, 3), 2048, 409, '85d67ace2b0368748ee1aa9f9653b13f87508c48'],
  ['v4.empty', new Uint8Array(0), 2048, 199, '580453593f1de2bde982bebdd6fd4b813b420fa7'],
  ['v5.zero', new Uint8Array(2048), 2048, 206, '963b105c1b8192848ccc1a7aef7a01aa90d9290e'],
  ['v6.bin', lcg(131072, 1), 131072, 211, '0316ae8e7c6d7fc343ff6c8b9e1eaf333a5bb9b1'],
  ['v7.bin', lcg(4097, 1), 8192, 206, '168f9892deab7a1e596239231a690641ff0fddba'],
];

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const header = (lines: string[]): string => lines.join('\n') + '\n\n';
const base = ['zsync: 0.6.2', 'Filename: f', 'Blocksize: 2048', 'Length: 5000', 'Hash-Lengths: 2,2,4', 'URL: f', 'SHA-1: ' + '0'.repeat(40)];
const withRecords = (h: string, n: number): Uint8Array => {
  const head = text(h);
  const out = new Uint8Array(head.length + n);
  out.set(head);
  return out;
};

function parseError(bytes: Uint8Array): ZpumpError {
  try {
    parseControlFile(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ZpumpError);
    return error as ZpumpError;
  }
  throw new Error('expected the parser to refuse this input');
}

describe('control file', () => {
  it.each(vectors)('%s renders byte for byte as zsyncmake wrote it', async (name, data, blockSize, size, whole) => {
    const bytes = renderControlFile(await controlFor(name, data, blockSize));
    expect(bytes.length).toBe(size);
    expect(sha1(bytes)).toBe(whole);
  });

  it.each(vectors)('%s parses back to the same object and bytes', async (name, data, blockSize) => {
    const original = await controlFor(name, data, blockSize);
    const bytes = renderControlFile(original);
    const parsed = parseControlFile(bytes);
    expect({ ...parsed, records: [...parsed.records] }).toEqual({ ...original, records: [...original.records] });
    expect(sha1(renderControlFile(parsed))).toBe(sha1(bytes));
  });

  it('accepts headers in any order, CRLF header lines, and missing optional headers', () => {
    const cf = parseControlFile(withRecords(['Length: 5000\r', 'Blocksize: 2048', 'Hash-Lengths: 2,2,4', 'zsync: 0.6.2'].join('\n') + '\n\n', 3 * 6));
    expect(cf.length).toBe(5000);
    expect(cf.sha1).toBeUndefined();
    expect(cf.urls).toEqual([]);
  });

  it('keeps headers that Safe: lets through, and refuses other unknown ones like zsync does', () => {
    const safe = parseControlFile(withRecords(header([...base, 'Safe: X-Extra,X-Other', 'X-Extra: abc'].slice(0)), 3 * 6));
    expect(safe.extraHeaders).toEqual([['X-Extra', 'abc']]);
    expect(sha1(renderControlFile(safe))).toBe(sha1(withRecords(header([...base.slice(0, 1), 'Safe: X-Extra,X-Other', ...base.slice(1), 'X-Extra: abc']), 3 * 6)));
    expect(parseError(withRecords(header([...base, 'X-Unknown: 1']), 18)).code).toBe('E_UNSUPPORTED');
  });

  it('recognises gzip-inside files (Z-Map2 with binary entries) without choking on them', () => {
    const head = text(['zsync: 0.6.2', 'Filename: a.txt', 'Z-Filename: a.txt.gz', 'Blocksize: 2048', 'Length: 5000', 'Hash-Lengths: 2,2,4', 'Z-URL: a.txt.gz', 'SHA-1: ' + 'a'.repeat(40), 'Z-Map2: 2'].join('\n') + '\n');
    const map = new Uint8Array([0, 80, 0, 0, 0x0a, 0x0a, 0x0a, 0x0a]); // binary, with newlines in it
    const bytes = new Uint8Array(head.length + map.length + 1 + 4 * 6);
    bytes.set(head);
    bytes.set(map, head.length);
    bytes[head.length + map.length] = 0x0a;
    const cf = parseControlFile(bytes);
    expect(cf.gzip?.zMapEntries).toBe(2);
    expect(cf.gzip?.zUrls).toEqual(['a.txt.gz']);
    expect(cf.records.length).toBe(3 * 6); // the junk record zsyncmake adds is dropped
  });

  it.each([
    ['an empty file', new Uint8Array(0), /empty/],
    ['no blank line', text(base.join('\n')), /never ends/],
    ['a truncated record area', withRecords(header(base), 17), /truncated: .*3 records of 6 bytes/],
    ['Hash-Lengths out of range', withRecords(header(base.map((l) => (l.startsWith('Hash') ? 'Hash-Lengths: 2,5,4' : l))), 18), /weak checksum bytes must be 1..4/],
    ['strong length out of range', withRecords(header(base.map((l) => (l.startsWith('Hash') ? 'Hash-Lengths: 2,2,17' : l))), 18), /strong checksum bytes must be 3..16 for MD4/],
    ['a Blocksize that is not a power of two', withRecords(header(base.map((l) => (l.startsWith('Block') ? 'Blocksize: 3000' : l))), 18), /power of two/],
    ['an absurd Length with few records', withRecords(header(base.map((l) => (l.startsWith('Length') ? 'Length: 9007199254740991' : l))), 18), /beyond the 4503599627370495 bytes/],
    ['a Length beyond 2^53', withRecords(header(base.map((l) => (l.startsWith('Length') ? 'Length: 99999999999999999' : l))), 18), /whole number/],
    ['binary junk in a header', withRecords(header([...base.slice(0, 2), 'URL: a\u0001b', ...base.slice(2)]), 18), /control byte 0x01/],
    ['invalid UTF-8 in a header', new Uint8Array([...text('zsync: 0.6.2\nFilename: '), 0xff, 0xfe, ...text('\n\n')]), /not valid UTF-8/],
    ['something that is not a .zsync', text('<html><body>404</body></html>\n\n'), /not a zsync control file/],
    ['a bad SHA-1', withRecords(header(base.map((l) => (l.startsWith('SHA') ? 'SHA-1: xyz' : l))), 18), /40 hex digits/],
    ['no Blocksize', withRecords(header(base.filter((l) => !l.startsWith('Block'))), 18), /no Blocksize/],
    ['a header without end within 64 KiB', new Uint8Array(70_000).fill(0x41), /within its first 65536 bytes/],
  ])('refuses %s with a message naming the problem', (_what, bytes, message) => {
    const error = parseError(bytes);
    expect(['E_BAD_CONTROL', 'E_UNSUPPORTED']).toContain(error.code);
    expect(error.message).toMatch(message);
  });

  it('refuses a newer Min-Version', () => {
    expect(parseError(withRecords(header([...base, 'Min-Version: 0.9.0']), 18)).code).toBe('E_UNSUPPORTED');
  });
});
