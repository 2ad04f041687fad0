import { describe, expect, it } from 'vitest';
import { parseAnnouncement, renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { WNM_CORE, mediaTypeOf, rfc3339FromV03, v03FromRfc3339 } from '../../src/format/wnm.js';
import { wnmExample, wnmSchemaErrors } from '../helpers/wnm-schema.js';

const sha512 = Buffer.alloc(64, 7).toString('base64');

const sample: Announcement = {
  pubTime: '20261124T162730.123',
  baseUrl: 'https://data.example.org/pub',
  relPath: 'model/run12/field.grib2',
  size: 1073741824,
  mtime: '20261124T162700',
  identity: { method: 'sha512', value: sha512 },
  zsync: { kind: 'inline', bytes: new Uint8Array([1, 2, 3]), blockSize: 65536 },
  wnm: { dataId: 'zpump/model/run12/field.grib2', rel: 'canonical' },
  extra: {},
};

const parseJson = (text: string): Record<string, any> => JSON.parse(text) as Record<string, any>;

describe('WIS2 notification messages: writing', () => {
  it('renders a WNM that the WNM 1.1.0 schema accepts, with the zsync object under properties', () => {
    const json = parseJson(renderAnnouncement(sample));
    expect(wnmSchemaErrors(json)).toEqual([]);
    expect(json.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(json.conformsTo).toEqual([WNM_CORE]);
    expect(json.type).toBe('Feature');
    expect(json.geometry).toBeNull();
    expect(json.properties).toEqual({
      pubtime: '2026-11-24T16:27:30.123Z',
      datetime: '2026-11-24T16:27:00Z',
      data_id: 'zpump/model/run12/field.grib2',
      integrity: { method: 'sha512', value: sha512 },
      zsync: { encoding: 'base64', value: 'AQID', size: 3, blockSize: 65536 },
    });
    expect(json.links).toEqual([{ rel: 'canonical', href: 'https://data.example.org/pub/model/run12/field.grib2', type: 'application/grib', length: 1073741824 }]);
  });

  it('each message gets a new UUID; update and deletion links; geometry when given', () => {
    const a = parseJson(renderAnnouncement(sample));
    const b = parseJson(renderAnnouncement(sample));
    expect(a.id).not.toBe(b.id);
    const update = parseJson(renderAnnouncement({ ...sample, wnm: { ...sample.wnm!, rel: 'update', geometry: { type: 'Point', coordinates: [6.1, 46.2] } } }));
    expect(wnmSchemaErrors(update)).toEqual([]);
    expect(update.links[0].rel).toBe('update');
    expect(update.geometry).toEqual({ type: 'Point', coordinates: [6.1, 46.2] });
    const deletion = parseJson(renderAnnouncement({ ...sample, zsync: undefined, size: 0, fileOp: { remove: '' }, wnm: { ...sample.wnm!, rel: 'deletion' } }));
    expect(wnmSchemaErrors(deletion)).toEqual([]);
    expect(deletion.links).toEqual([{ rel: 'deletion', href: 'https://data.example.org/pub/model/run12/field.grib2', type: 'application/grib' }]);
    expect(deletion.properties.integrity).toBeUndefined();
  });

  it('a signature by reference is named relative to the data folder', () => {
    const ref = parseJson(renderAnnouncement({ ...sample, zsync: { kind: 'reference', retrievePath: 'model/run12/field.grib2.zsync', size: 9000, identity: { method: 'sha512', value: sha512 } } }));
    expect(wnmSchemaErrors(ref)).toEqual([]);
    expect(ref.properties.zsync).toEqual({ retrievePath: 'field.grib2.zsync', size: 9000, identity: { method: 'sha512', value: sha512 } });
    const back = parseAnnouncement(JSON.stringify(ref));
    expect(back.baseUrl).toBe('https://data.example.org/pub/model/run12');
    expect(back.zsync).toEqual({ kind: 'reference', retrievePath: 'field.grib2.zsync', size: 9000, identity: { method: 'sha512', value: sha512 } });
  });

  it('converts times both ways, any offset and up to nanoseconds', () => {
    expect(rfc3339FromV03('20261124T162730')).toBe('2026-11-24T16:27:30Z');
    expect(v03FromRfc3339('2026-11-24T16:27:30Z')).toBe('20261124T162730');
    expect(v03FromRfc3339('2022-03-20T04:50:18.314854383Z')).toBe('20220320T045018.314');
    expect(v03FromRfc3339('2026-11-24T18:27:30.5+02:00')).toBe('20261124T162730.500');
    expect(v03FromRfc3339('yesterday')).toBeUndefined();
    expect(mediaTypeOf('a/b.bufr4')).toBe('application/bufr');
    expect(mediaTypeOf('a/b')).toBe('application/octet-stream');
  });
});

describe('WIS2 notification messages: reading', () => {
  it('reads its own messages back to the same announcement', () => {
    const back = parseAnnouncement(renderAnnouncement(sample));
    expect(back).toMatchObject({
      pubTime: '20261124T162730.123',
      baseUrl: 'https://data.example.org/pub/model/run12',
      relPath: 'zpump/model/run12/field.grib2',
      retrievePath: 'field.grib2',
      size: 1073741824,
      mtime: '20261124T162700',
      identity: { method: 'sha512', value: sha512 },
      wnm: { dataId: 'zpump/model/run12/field.grib2', rel: 'canonical', mediaType: 'application/grib' },
    });
    expect(back.zsync?.kind === 'inline' && [...back.zsync.bytes]).toEqual([1, 2, 3]);
    expect(back.fileOp).toBeUndefined();
  });

  it('reads a deletion as a removal, and a rename zpump carries', () => {
    const deletion = parseAnnouncement(renderAnnouncement({ ...sample, zsync: undefined, size: 0, fileOp: { remove: '' }, wnm: { ...sample.wnm!, rel: 'deletion' } }));
    expect(deletion.fileOp).toEqual({ remove: '' });
    const renamed = parseAnnouncement(renderAnnouncement({ ...sample, fileOp: { rename: 'model/run11/field.grib2' } }));
    expect(renamed.fileOp).toEqual({ rename: 'model/run11/field.grib2' });
  });

  it("reads another publisher's WNM (the standard's example, with length and integrity)", () => {
    const example = wnmExample('example2.json') as any;
    example.links[0].length = 1234;
    example.properties.integrity.value = sha512;
    const a = parseAnnouncement(JSON.stringify(example));
    expect(a).toMatchObject({
      relPath: 'dataset/4546/abcdef-abcd-abcd-abcd-abcdefabcd',
      baseUrl: 'https://example.org/data/nwp',
      retrievePath: '92c557ef-d28e-4713-91af-2e2e7be6f8ab.grib',
      size: 1234,
      pubTime: '20220320T045018',
      extra: { metadata_id: 'urn:wmo:md:fr-meteo-france:gap123', start_datetime: '2022-03-20T00:06:00Z', end_datetime: '2022-03-20T00:12:00Z' },
    });
    expect(a.mtime).toBeUndefined();
  });

  const valid = (): any => parseJson(renderAnnouncement({ ...sample, zsync: undefined }));
  const hostile: Array<[string, (m: any) => void, RegExp]> = [
    ['no integrity (the standard example 3)', (m) => delete m.properties.integrity, /integrity" is missing/],
    ['no length', (m) => delete m.links[0].length, /needs "length"/],
    ['a string length', (m) => (m.links[0].length = '12'), /needs "length"/],
    ['links not an array', (m) => (m.links = { href: 'x' }), /"links" must be an array/],
    ['no data link', (m) => (m.links[0].rel = 'item'), /no link with rel canonical, update or deletion/],
    ['an href that is no URL', (m) => (m.links[0].href = 'not a url'), /is not a URL/],
    ['an href with a query', (m) => (m.links[0].href += '?x=1'), /query or fragment/],
    ['an href naming a folder', (m) => (m.links[0].href = 'https://h/dir/'), /names no file/],
    ['properties a string', (m) => (m.properties = 'x'), /"properties" must be an object/],
    ['type not Feature', (m) => (m.type = 'FeatureCollection'), /"type" must be "Feature"/],
    ['pubtime a number', (m) => (m.properties.pubtime = 20261124), /pubtime/],
    ['pubtime not RFC 3339', (m) => (m.properties.pubtime = '24/11/2026'), /pubtime/],
    ['no data_id', (m) => delete m.properties.data_id, /data_id/],
    ['integrity a string', (m) => (m.properties.integrity = 'sha512'), /integrity" must be an object/],
  ];
  it.each(hostile)('refuses a WNM with %s, saying why', (_what, spoil, reason) => {
    const m = valid();
    spoil(m);
    expect(() => parseAnnouncement(JSON.stringify(m))).toThrow(reason);
  });
});

describe('the schema check itself', () => {
  it('fails a message the standard refuses (no links, a bad UUID)', () => {
    const m = parseJson(renderAnnouncement(sample));
    delete m.links;
    m.id = 'not-a-uuid';
    expect(wnmSchemaErrors(m).join('\n')).toMatch(/links|uuid/);
  });
});
