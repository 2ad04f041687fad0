import { describe, expect, it } from 'vitest';
import { dataUrlOf, parseAnnouncement, parseV03Time, renderAnnouncement, v03Time, type Announcement } from '../../src/format/announcement.js';
import { ZpumpError } from '../../src/errors.js';

const sample: Announcement = {
  pubTime: '20261124T162730.123',
  baseUrl: 'https://data.example.org/',
  relPath: 'model/run12/field.grib2',
  size: 1073741824,
  mtime: '20261124T162730',
  identity: { method: 'sha512', value: 'abc=' },
  zsync: { kind: 'inline', bytes: new Uint8Array([1, 2, 3]), blockSize: 65536 },
  extra: { topic: 'x' },
};

describe('announcement', () => {
  it('renders the contract shape and parses back', () => {
    const json = JSON.parse(renderAnnouncement(sample));
    expect(json.zsync).toEqual({ encoding: 'base64', value: 'AQID', size: 3, blockSize: 65536 });
    expect(json.identity).toEqual({ method: 'sha512', value: 'abc=' });
    expect(json.topic).toBe('x');
    const back = parseAnnouncement(renderAnnouncement(sample));
    expect({ ...back, zsync: { ...back.zsync, bytes: [...(back.zsync as { bytes: Uint8Array }).bytes] } }).toEqual({ ...sample, zsync: { ...sample.zsync, bytes: [1, 2, 3] } });
  });

  it('is lenient with other publishers: integrity, retPath, string size, non-object zsync', () => {
    const a = parseAnnouncement(JSON.stringify({ pubTime: '20261124T162730', baseUrl: 'http://h/', relPath: 'a/b', retPath: 'x/b', size: '42', integrity: { method: 'md5', value: 'q' }, zsync: 'unsupported' }));
    expect(a.size).toBe(42);
    expect(a.identity.method).toBe('md5');
    expect(a.retrievePath).toBe('x/b');
    expect(a.zsync).toBeUndefined();
    expect(dataUrlOf(a)).toBe('http://h/x/b');
  });

  it('reads the reference form', () => {
    const a = parseAnnouncement(JSON.stringify({ pubTime: '20261124T162730', baseUrl: 'http://h', relPath: 'a b.bin', size: 1, identity: { method: 'sha512', value: 'v' }, zsync: { retrievePath: 'a b.bin.zsync', size: 9 } }));
    expect(a.zsync).toEqual({ kind: 'reference', retrievePath: 'a b.bin.zsync', size: 9 });
    expect(dataUrlOf(a)).toBe('http://h/a%20b.bin');
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no identity', JSON.stringify({ pubTime: 't', baseUrl: 'b', relPath: 'r', size: 1 }), /identity/],
    ['a bad size', JSON.stringify({ pubTime: 't', baseUrl: 'b', relPath: 'r', size: -1, identity: { method: 'sha512', value: 'v' } }), /size/],
    ['a missing relPath', JSON.stringify({ pubTime: 't', baseUrl: 'b', size: 1, identity: { method: 'sha512', value: 'v' } }), /relPath/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseAnnouncement(text)).toThrow(ZpumpError);
    expect(() => parseAnnouncement(text)).toThrow(message);
  });

  it('refuses a message over the size limit', () => {
    expect(() => parseAnnouncement('x'.repeat(100), 50)).toThrow(/over the 50-byte limit/);
  });

  it('formats and parses v03 times', () => {
    const ms = Date.UTC(2026, 10, 24, 16, 27, 30, 123);
    expect(v03Time(ms)).toBe('20261124T162730.123');
    expect(v03Time(ms, false)).toBe('20261124T162730');
    expect(parseV03Time('20261124T162730.123')).toBe(ms);
  });

  it('refuses times with a field out of range instead of rolling them over', () => {
    for (const t of ['20261324T000000', '20260230T000000', '20261124T240000', '20261124T166000', '20261124T162760', '19691231T235959', '20261124T162730.', ''])
      expect(parseV03Time(t), t).toBeUndefined();
    expect(parseV03Time('20240229T000000')).toBe(Date.UTC(2024, 1, 29));
  });
});

describe('removals from other publishers', () => {
  it('need neither size nor identity', () => {
    const a = parseAnnouncement(JSON.stringify({ pubTime: '20261124T000000', baseUrl: 'http://h/', relPath: 'a/b', fileOp: { remove: '' } }));
    expect(a.size).toBe(0);
    expect(a.fileOp).toEqual({ remove: '' });
    expect(() => parseAnnouncement(JSON.stringify({ pubTime: '20261124T000000', baseUrl: 'http://h/', relPath: 'a/b', fileOp: { rename: 'x' } }))).toThrow(/size/);
  });
});
