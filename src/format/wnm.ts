// WIS2 Notification Messages (WNM 1.x, a GeoJSON Feature) as a second wire form of the same
// Announcement (DESIGN.md "Announcement message"; test/fixtures/wis2/ holds the schema). Pure and
// free of runtime imports from announcement.ts, which dispatches to it: rendering starts from the
// v03 object that announcement.ts builds, reading turns a WNM into a v03-shaped object that
// announcement.ts then checks with the same rules as any v03 message.
//
// The data's place: the chosen link's href. Its folder becomes baseUrl and its last segment
// retrievePath, so a signature by reference (`zsync.retrievePath`) is relative to that folder,
// where zpump publishes the .zsync. The local relPath is `data_id`.

import { randomUUID } from 'node:crypto';
import { ZpumpError } from '../errors.js';
import { ALL_SCHEMES, fetchableUrl } from './url-policy.js';

export const WNM_CORE = 'http://wis.wmo.int/spec/wnm/1/conf/core';
/** WNM core: a whole message SHALL NOT exceed 8 192 bytes. */
export const WNM_MAX_BYTES = 8192;

export type WnmRel = 'canonical' | 'update' | 'deletion';

/** What a WNM carries beyond the v03 fields. */
export interface WnmFields {
  /** Kept when read (a relay may pass it on); a new UUID is made when absent. */
  id?: string;
  dataId: string;
  rel: WnmRel;
  /** GeoJSON Point or Polygon; null when absent. */
  geometry?: unknown;
  /** Media type of the data (link `type`). */
  mediaType?: string;
}

const bad = (message: string): ZpumpError => new ZpumpError('E_BAD_MESSAGE', `bad WIS2 notification message: ${message}`);

/** A message is read as WNM when it looks like a GeoJSON Feature (v03 has neither field). */
export function looksLikeWnm(o: Record<string, unknown>): boolean {
  return o.type === 'Feature' || ('properties' in o && 'links' in o && !('relPath' in o));
}

/** v03 time (20261124T162730.123) → RFC 3339 (2026-11-24T16:27:30.123Z). */
export function rfc3339FromV03(text: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d+)?$/.exec(text);
  if (!m) throw bad(`time ${JSON.stringify(text)} is not in v03 form`);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}Z`;
}

/** RFC 3339 with any offset and any number of fraction digits → v03 time in UTC (milliseconds kept). */
export function v03FromRfc3339(text: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3));
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number) as [number, number, number, number, number];
  const second = Math.min(59, Number(m[6])); // a leap second counts as :59
  let utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC rolls "02-31" or "25:99" over and reads years 0-99 as 1900-1999: a field out of range is no time.
  const back = new Date(utc);
  if (year < 1970 || Number(m[6]) > 60 || back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || back.getUTCHours() !== hour || back.getUTCMinutes() !== minute) return undefined;
  if (m[8] !== 'Z' && m[8] !== 'z' && (Number(m[8]!.slice(1, 3)) > 23 || Number(m[8]!.slice(4, 6)) > 59)) return undefined;
  if (m[8] !== 'Z' && m[8] !== 'z') {
    const sign = m[8]!.startsWith('-') ? -1 : 1;
    utc -= sign * (Number(m[8]!.slice(1, 3)) * 60 + Number(m[8]!.slice(4, 6))) * 60_000;
  }
  if (!Number.isFinite(utc)) return undefined;
  const iso = new Date(utc).toISOString();
  const compact = iso.replace(/[-:]/g, '').replace('Z', '');
  return m[7] === undefined ? compact.replace(/\.\d+$/, '') : compact;
}

const MEDIA_TYPES: Record<string, string> = {
  bufr: 'application/bufr',
  bufr4: 'application/bufr',
  grib: 'application/grib',
  grib2: 'application/grib',
  grb2: 'application/grib',
  nc: 'application/netcdf',
  h5: 'application/x-hdf5',
  json: 'application/json',
  geojson: 'application/geo+json',
  xml: 'application/xml',
  csv: 'text/csv',
  txt: 'text/plain',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
};

export function mediaTypeOf(relPath: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(relPath)?.[1]?.toLowerCase();
  return (ext && MEDIA_TYPES[ext]) ?? 'application/octet-stream';
}

/**
 * The WNM for a v03 object as announcement.ts renders it (pubTime, relPath, size, mtime,
 * identity, fileOp, zsync and unknown fields). `dataUrl` is baseUrl + relPath, joined.
 */
export function renderWnm(v03: Record<string, unknown>, wnm: WnmFields, dataUrl: string): string {
  const { pubTime, baseUrl: _b, relPath, retrievePath: _r, size, mtime, identity, fileOp, zsync, ...extra } = v03;
  const pubtime = rfc3339FromV03(pubTime as string);
  const deletion = wnm.rel === 'deletion';
  const properties: Record<string, unknown> = {
    ...extra,
    pubtime,
    datetime: typeof mtime === 'string' ? rfc3339FromV03(mtime) : pubtime,
    data_id: wnm.dataId,
  };
  if (!deletion && identity) properties.integrity = identity;
  if (zsync && typeof zsync === 'object') properties.zsync = relativeToData(zsync as Record<string, unknown>, (v03.retrievePath ?? relPath) as string);
  // Only zpump reads a rename; WIS2 subscribers see new data, then (a separate message) a deletion.
  const renamed = (fileOp as Record<string, unknown> | undefined)?.rename;
  if (typeof renamed === 'string') properties.fileOp = { rename: renamed };
  const link: Record<string, unknown> = { rel: wnm.rel, href: dataUrl, type: wnm.mediaType ?? mediaTypeOf(relPath as string) };
  if (!deletion) link.length = size;
  return JSON.stringify({
    id: wnm.id ?? randomUUID(),
    conformsTo: [WNM_CORE],
    type: 'Feature',
    geometry: wnm.geometry ?? null,
    properties,
    links: [link],
  });
}

/**
 * A by-reference signature's path, relative to the data's folder (zpump publishes it beside the
 * data): a WNM's baseUrl is that folder. A fine signature may also sit in a folder below it.
 */
function relativeToData(zsync: Record<string, unknown>, dataPath: string): Record<string, unknown> {
  const folderOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1);
  const folder = folderOf(dataPath);
  let out = zsync;
  if (typeof zsync.retrievePath === 'string') {
    const path = zsync.retrievePath;
    if (folderOf(path) !== folder) throw new ZpumpError('E_USAGE', `a WIS2 message can only point at a signature in its data's folder, not ${path}`);
    out = { ...out, retrievePath: path.slice(folder.length) };
  }
  const fine = zsync.fine as Record<string, unknown> | undefined;
  if (fine && typeof fine.retrievePath === 'string') {
    if (!fine.retrievePath.startsWith(folder)) throw new ZpumpError('E_USAGE', `a WIS2 message can only point at a fine signature in or below its data's folder, not ${fine.retrievePath}`);
    out = { ...out, fine: { ...fine, retrievePath: fine.retrievePath.slice(folder.length) } };
  }
  return out;
}

const LINK_RELS: readonly WnmRel[] = ['canonical', 'update', 'deletion'];

/**
 * A WNM as a v03-shaped object (for parseAnnouncement's checks) and the WNM fields. Throws
 * E_BAD_MESSAGE with the reason when it cannot be applied: no usable link, no data_id, no
 * integrity for new data, no length, wrong types.
 */
export function wnmToV03(o: Record<string, unknown>): { v03: Record<string, unknown>; wnm: WnmFields } {
  if (o.type !== 'Feature') throw bad('"type" must be "Feature"');
  const p = o.properties;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad('"properties" must be an object');
  const props = p as Record<string, unknown>;
  if (!Array.isArray(o.links)) throw bad('"links" must be an array');
  const link = o.links.find((l): l is Record<string, unknown> => typeof l === 'object' && l !== null && LINK_RELS.includes((l as { rel?: unknown }).rel as WnmRel));
  if (!link) throw bad('no link with rel canonical, update or deletion');
  const rel = link.rel as WnmRel;
  if (typeof link.href !== 'string') throw bad(`the ${rel} link has no href string`);
  // Before any parsing: the URL parser quietly resolves "%2e%2e" and ".%2e" as "..".
  const rawPath = link.href.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0] ?? '';
  for (const segment of rawPath.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw bad(`the ${rel} link's href is not valid percent-encoding`);
    }
    if (decoded === '.' || decoded === '..' || /[\\\0]/.test(decoded) || decoded.includes('/')) throw bad(`the ${rel} link's href ${JSON.stringify(link.href.slice(0, 200))} leaves its folder once decoded`);
  }
  let url: URL;
  try {
    url = new URL(link.href);
  } catch {
    throw bad(`the ${rel} link's href ${JSON.stringify(link.href)} is not a URL`);
  }
  // The one URL check every URL from a message passes (the subscriber's schemes are applied later, to the data URL).
  fetchableUrl(link.href, { schemes: ALL_SCHEMES, what: `the ${rel} link` });
  if (url.search !== '' || url.hash !== '') throw bad(`the ${rel} link's href has a query or fragment: zpump fetches plain file URLs`);
  const cut = url.href.lastIndexOf('/');
  let name: string;
  try {
    name = decodeURIComponent(url.href.slice(cut + 1));
  } catch {
    throw bad(`the ${rel} link's href is not valid percent-encoding`);
  }
  if (name === '' || name.includes('/')) throw bad(`the ${rel} link's href ${JSON.stringify(link.href)} names no file`);
  if (typeof props.data_id !== 'string' || props.data_id === '') throw bad('"properties.data_id" must be a non-empty string');
  if (typeof props.pubtime !== 'string') throw bad('"properties.pubtime" must be an RFC 3339 time');
  const pubTime = v03FromRfc3339(props.pubtime);
  if (pubTime === undefined) throw bad(`"properties.pubtime" ${JSON.stringify(props.pubtime)} is not an RFC 3339 time`);
  const deletion = rel === 'deletion';
  if (!deletion && props.integrity === undefined) throw bad('"properties.integrity" is missing: zpump verifies every file it applies');
  if (props.integrity !== undefined && (typeof props.integrity !== 'object' || props.integrity === null)) throw bad('"properties.integrity" must be an object');
  if (!deletion && (typeof link.length !== 'number' || !Number.isSafeInteger(link.length) || link.length < 0)) {
    throw bad(`the ${rel} link needs "length" (a whole number of bytes): zpump needs the size to fetch and check the file`);
  }
  if (link.type !== undefined && typeof link.type !== 'string') throw bad(`the ${rel} link's "type" must be a string`);
  if (o.id !== undefined && typeof o.id !== 'string') throw bad('"id" must be a string');
  if (props.datetime !== undefined && props.datetime !== null && typeof props.datetime !== 'string') throw bad('"properties.datetime" must be a string or null');
  const mtime = typeof props.datetime === 'string' ? v03FromRfc3339(props.datetime) : undefined;
  const known = new Set(['pubtime', 'datetime', 'data_id', 'integrity', 'zsync', 'fileOp']);
  const extra = Object.fromEntries(Object.entries(props).filter(([k]) => !known.has(k)));
  const v03: Record<string, unknown> = {
    ...extra,
    pubTime,
    baseUrl: url.href.slice(0, cut),
    relPath: props.data_id,
    retrievePath: name,
    size: deletion ? 0 : link.length,
    ...(mtime !== undefined ? { mtime } : {}),
    ...(props.integrity !== undefined ? { identity: props.integrity } : {}),
    ...(props.zsync !== undefined ? { zsync: props.zsync } : {}),
  };
  const renamed = (props.fileOp as Record<string, unknown> | undefined)?.rename;
  if (deletion) v03.fileOp = { remove: '' };
  else if (typeof renamed === 'string') v03.fileOp = { rename: renamed };
  const wnm: WnmFields = { dataId: props.data_id, rel };
  if (typeof o.id === 'string') wnm.id = o.id;
  if (o.geometry !== undefined && o.geometry !== null) wnm.geometry = o.geometry;
  if (typeof link.type === 'string') wnm.mediaType = link.type;
  return { v03, wnm };
}

/** --geometry: a GeoJSON Point or Polygon as JSON text (what the WNM schema allows). */
export function parseGeometry(text: string): unknown {
  let g: unknown;
  try {
    g = JSON.parse(text);
  } catch {
    throw new ZpumpError('E_USAGE', `--geometry ${JSON.stringify(text.slice(0, 80))} is not JSON: give e.g. '{"type":"Point","coordinates":[6.15,46.22]}'`);
  }
  const o = g as { type?: unknown; coordinates?: unknown } | null;
  const numbers = (v: unknown): boolean => Array.isArray(v) && v.length >= 2 && v.every((n) => typeof n === 'number' && Number.isFinite(n));
  const ring = (v: unknown): boolean => Array.isArray(v) && v.length >= 4 && v.every(numbers);
  const ok = o !== null && typeof o === 'object' && ((o.type === 'Point' && numbers(o.coordinates)) || (o.type === 'Polygon' && Array.isArray(o.coordinates) && o.coordinates.every(ring)));
  if (!ok) throw new ZpumpError('E_USAGE', '--geometry must be a GeoJSON Point ({"type":"Point","coordinates":[lon,lat]}) or Polygon (rings of at least 4 [lon,lat] positions)');
  return g;
}
