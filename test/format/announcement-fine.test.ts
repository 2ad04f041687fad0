import { describe, expect, it } from 'vitest';
import { fineSignatureOf, fineSignatureUrl, parseAnnouncement, renderAnnouncement, type Announcement, type FineSignature } from '../../src/format/announcement.js';
import { DEFAULT_SCHEMES } from '../../src/format/url-policy.js';
import { wnmSchemaErrors } from '../helpers/wnm-schema.js';

const sha512 = Buffer.alloc(64, 9).toString('base64');
const fine: FineSignature = { retrievePath: 'model/run12/field.grib2.zsync', size: 2_621_520, blockSize: 4096, identity: { method: 'sha512', value: sha512 } };

const sample: Announcement = {
  pubTime: '20261124T162730.123',
  baseUrl: 'https://data.example.org/pub',
  relPath: 'model/run12/field.grib2',
  size: 268_435_456,
  mtime: '20261124T162700',
  identity: { method: 'sha512', value: sha512 },
  zsync: { kind: 'inline', bytes: new Uint8Array([1, 2, 3]), blockSize: 1 << 20, fine },
  extra: {},
};

const json = (a: Announcement): Record<string, any> => JSON.parse(renderAnnouncement(a)) as Record<string, any>;
/** The sample as it comes off the wire with `fine` replaced by `value`. */
const withFine = (value: unknown): Announcement => {
  const o = json(sample);
  o.zsync.fine = value;
  return parseAnnouncement(JSON.stringify(o));
};

describe('two-level signatures in a message: zsync.fine', () => {
  it('renders the contract form and reads it back', () => {
    expect(json(sample).zsync).toEqual({
      encoding: 'base64',
      value: 'AQID',
      size: 3,
      blockSize: 1 << 20,
      fine: { retrievePath: 'model/run12/field.grib2.zsync', size: 2_621_520, blockSize: 4096, identity: { method: 'sha512', value: sha512 } },
    });
    const back = parseAnnouncement(renderAnnouncement(sample));
    expect(back.zsync?.fine).toEqual(fine);
    expect(back.zsync?.fineIgnored).toBeUndefined();
    expect(fineSignatureOf(back)).toEqual({ ...fine, url: 'https://data.example.org/pub/model/run12/field.grib2.zsync' });
    expect(fineSignatureUrl(back, { schemes: DEFAULT_SCHEMES })).toBe('https://data.example.org/pub/model/run12/field.grib2.zsync');
  });

  it('a coarse signature by reference carries its block size and the fine level too', () => {
    const ref: Announcement = { ...sample, zsync: { kind: 'reference', retrievePath: 'model/run12/field.grib2.coarse.zsync', size: 12_000, identity: { method: 'sha512', value: sha512 }, blockSize: 1 << 26, fine } };
    const back = parseAnnouncement(renderAnnouncement(ref));
    expect(back.zsync).toEqual(ref.zsync);
    expect(fineSignatureUrl(back)).toBe('https://data.example.org/pub/model/run12/field.grib2.zsync');
  });

  it('a fine signature under a separate signature folder below baseUrl', () => {
    const a = { ...sample, zsync: { ...sample.zsync!, fine: { ...fine, retrievePath: '.zsync/model/run12/field.grib2.zsync' } } } as Announcement;
    expect(fineSignatureUrl(parseAnnouncement(renderAnnouncement(a)))).toBe('https://data.example.org/pub/.zsync/model/run12/field.grib2.zsync');
  });

  it.each([
    ['not an object', 'unsupported', /not an object/],
    ['no retrievePath', { ...fine, retrievePath: undefined }, /retrievePath/],
    ['an empty retrievePath', { ...fine, retrievePath: '' }, /retrievePath/],
    ['a very long retrievePath', { ...fine, retrievePath: 'a/'.repeat(3000) }, /longer than/],
    ['a string size', { ...fine, size: '2621520' }, /size/],
    ['a zero size', { ...fine, size: 0 }, /size/],
    ['a fractional size', { ...fine, size: 1.5 }, /size/],
    ['a size over the cap', { ...fine, size: 2 ** 40 }, /more than zpump reads/],
    ['a block size that is not a power of two', { ...fine, blockSize: 3000 }, /blockSize/],
    ['a negative block size', { ...fine, blockSize: -4096 }, /blockSize/],
    ['a block size over 64 MiB', { ...fine, blockSize: 2 ** 27 }, /blockSize/],
    ['a block size larger than the coarse one', { ...fine, blockSize: 1 << 21 }, /larger than the coarse/],
    ['no identity', { ...fine, identity: undefined }, /identity/],
    ['an identity that is a string', { ...fine, identity: 'sha512' }, /identity/],
    ['an identity zpump cannot check', { ...fine, identity: { method: 'arbitrary', value: 'x' } }, /cannot be verified/],
    ['a sha512 identity of the wrong length', { ...fine, identity: { method: 'sha512', value: 'AAAA' } }, /64-byte digest/],
  ])('a fine level with %s is ignored with the reason; the coarse level stays', (_what, value, why) => {
    const a = withFine(value);
    expect(a.zsync?.kind).toBe('inline');
    expect(a.zsync?.kind === 'inline' && [...a.zsync.bytes]).toEqual([1, 2, 3]);
    expect(a.zsync?.fine).toBeUndefined();
    expect(a.zsync?.fineIgnored).toMatch(why);
    const usable = fineSignatureOf(a);
    expect('why' in usable && usable.why).toMatch(why);
    expect(fineSignatureUrl(a)).toBeUndefined();
    // What was not understood is not passed on by a relay either.
    expect(json(a).zsync.fine).toBeUndefined();
  });

  it.each([
    ['a parent folder', '../secret.zsync'],
    ['an escaped parent', '%2e%2e/secret.zsync'],
    ['another server', 'https://evil.example.net/pub/x.zsync'],
    ['a folder beside baseUrl', 'https://data.example.org/public/x.zsync'],
    ['a file: URL', 'file:///etc/passwd'],
  ])('a fine retrievePath naming %s fails the URL check: no fine level, the message stands', (_what, path) => {
    const a = withFine({ ...fine, retrievePath: path });
    expect(a.zsync?.fine?.retrievePath).toBe(path);
    const usable = fineSignatureOf(a, { schemes: DEFAULT_SCHEMES });
    expect('why' in usable).toBe(true);
    expect(fineSignatureUrl(a, { schemes: DEFAULT_SCHEMES })).toBeUndefined();
  });

  it('file: fine URLs only when the rules allow file:', () => {
    const a = parseAnnouncement(renderAnnouncement({ ...sample, baseUrl: 'file:///srv/pub' }));
    expect(fineSignatureUrl(a, { schemes: DEFAULT_SCHEMES })).toBeUndefined();
    expect(fineSignatureUrl(a, { schemes: [...DEFAULT_SCHEMES, 'file'] })).toBe('file:///srv/pub/model/run12/field.grib2.zsync');
  });

  it('a message with one level says so', () => {
    const one = { ...sample, zsync: { kind: 'inline', bytes: new Uint8Array([1]), blockSize: 4096 } } as Announcement;
    const back = parseAnnouncement(renderAnnouncement(one));
    expect(json(one).zsync.fine).toBeUndefined();
    expect(fineSignatureOf(back)).toEqual({ why: 'the message has one signature level' });
    expect(fineSignatureOf({ ...back, zsync: undefined })).toEqual({ why: 'the message carries no signature' });
  });

  describe('in a WIS2 notification message', () => {
    const wis2: Announcement = { ...sample, wnm: { dataId: 'model/run12/field.grib2', rel: 'canonical' } };

    it('travels under properties, relative to the data folder, and round-trips', () => {
      const o = json(wis2);
      expect(wnmSchemaErrors(o)).toEqual([]);
      expect(o.properties.zsync.fine).toEqual({ ...fine, retrievePath: 'field.grib2.zsync' });
      const back = parseAnnouncement(JSON.stringify(o));
      expect(back.baseUrl).toBe('https://data.example.org/pub/model/run12');
      expect(back.zsync?.fine).toEqual({ ...fine, retrievePath: 'field.grib2.zsync' });
      expect(fineSignatureUrl(back)).toBe('https://data.example.org/pub/model/run12/field.grib2.zsync');
      // Rendered again (a relay), it stays where it is.
      expect(fineSignatureUrl(parseAnnouncement(renderAnnouncement(back)))).toBe('https://data.example.org/pub/model/run12/field.grib2.zsync');
    });

    it('a fine signature in a folder below the data folder keeps its subfolder', () => {
      const below = { ...wis2, zsync: { ...wis2.zsync!, fine: { ...fine, retrievePath: 'model/run12/.zsync/field.grib2.zsync' } } } as Announcement;
      const back = parseAnnouncement(renderAnnouncement(below));
      expect(fineSignatureUrl(back)).toBe('https://data.example.org/pub/model/run12/.zsync/field.grib2.zsync');
    });

    it('a fine signature outside the data folder cannot be named in a WNM (usage error)', () => {
      const outside = { ...wis2, zsync: { ...wis2.zsync!, fine: { ...fine, retrievePath: '.zsync/model/run12/field.grib2.zsync' } } } as Announcement;
      expect(() => renderAnnouncement(outside)).toThrow(/fine signature in or below its data's folder/);
    });
  });
});
