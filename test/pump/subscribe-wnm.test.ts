// The subscriber reads WIS2 Notification Messages from the same sources as v03: canonical (new
// data), update (a new version, synced by delta), deletion; hostile WNM are set aside with the
// reason. Data on local file: URLs (no server needed).

import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderAnnouncement } from '../../src/format/announcement.js';
import { createSpoolSink, createSpoolSource } from '../../src/pump/bus/spool.js';
import { buildFileMessage, buildRemoveMessage } from '../../src/pump/message.js';
import { Subscriber, type ApplyReport } from '../../src/pump/subscribe.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
let pub: string;
let mirror: string;
let spool: string;
let reports: ApplyReport[];
let logs: string[];

beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  pub = join(tmp.path, 'pub');
  mirror = join(tmp.path, 'mirror');
  spool = join(tmp.path, 'spool');
  await mkdir(join(pub, 'obs'), { recursive: true });
  await mkdir(mirror);
  reports = [];
  logs = [];
});
afterEach(async () => {
  await tmp.cleanup();
});

const subscriber = () => new Subscriber({ dir: mirror, schemes: ['file'], engine: 'js', retries: 0, retryDelayMs: 10, report: (r) => reports.push(r), log: (l) => logs.push(l) });
const wis2 = { format: 'wis2', dataIdPrefix: '' } as const;
const drain = async (s: Subscriber) => s.run(createSpoolSource(spool), { once: true, prefetch: 4, signal: new AbortController().signal });

async function writeAt(rel: string, bytes: Uint8Array, second: number): Promise<void> {
  await writeFile(join(pub, rel), bytes);
  const t = new Date(Date.UTC(2026, 0, 1, 0, 0, second));
  await utimes(join(pub, rel), t, t);
}

describe('subscribe: WIS2 notification messages', () => {
  it('applies canonical (whole), update (delta) and deletion', async () => {
    const sink = await createSpoolSink(spool);
    const v1 = seededBytes(3 << 20, 11);
    await writeAt('obs/a.bin', v1, 1);
    await sink.post((await buildFileMessage({ path: join(pub, 'obs/a.bin'), root: pub, baseUrl: `file://${pub}`, engine: 'js', ...wis2 })).message);
    const s = subscriber();
    await drain(s);
    expect(Buffer.compare(await readFile(join(mirror, 'obs/a.bin')), v1)).toBe(0);
    expect(reports.map((r) => r.action)).toEqual(['whole']);

    const v2 = Buffer.from(v1);
    v2.fill(9, 1 << 20, (1 << 20) + 5000);
    await writeAt('obs/a.bin', v2, 2);
    const update = (await buildFileMessage({ path: join(pub, 'obs/a.bin'), root: pub, baseUrl: `file://${pub}`, engine: 'js', rel: 'update', ...wis2 })).message;
    expect(JSON.parse(renderAnnouncement(update)).links[0].rel).toBe('update');
    await sink.post(update);
    await drain(s);
    expect(Buffer.compare(await readFile(join(mirror, 'obs/a.bin')), v2)).toBe(0);
    expect(reports.map((r) => r.action)).toEqual(['whole', 'delta']);
    expect(reports[1]!.bytesFetched).toBeLessThan(1 << 20);

    const deletion = buildRemoveMessage(pub, join(pub, 'obs/a.bin'), `file://${pub}`, wis2);
    expect(JSON.parse(renderAnnouncement(deletion)).links[0].rel).toBe('deletion');
    await sink.post(deletion);
    await drain(s);
    expect(await stat(join(mirror, 'obs/a.bin')).catch(() => undefined)).toBeUndefined();
    expect(reports.map((r) => r.action)).toEqual(['whole', 'delta', 'removed']);
    expect(s.setAside).toBe(0);
  });

  it('sets hostile WNM aside with the reason, and applies the good one beside them', async () => {
    await writeAt('obs/good.txt', Buffer.from('good data'), 3);
    const good = JSON.parse(renderAnnouncement((await buildFileMessage({ path: join(pub, 'obs/good.txt'), root: pub, baseUrl: `file://${pub}`, engine: 'js', ...wis2 })).message)) as Record<string, any>;
    const spoil = (name: string, change: (m: any) => void): [string, string] => {
      const m = structuredClone(good);
      change(m);
      return [name, JSON.stringify(m)];
    };
    const hostile = [
      spoil('no-integrity', (m) => delete m.properties.integrity),
      spoil('links-not-array', (m) => (m.links = 'x')),
      spoil('no-data-link', (m) => (m.links[0].rel = 'alternate')),
      spoil('length-string', (m) => (m.links[0].length = '9')),
      spoil('pubtime-number', (m) => (m.properties.pubtime = 1)),
      spoil('data-id-absolute', (m) => (m.properties.data_id = '/etc/passwd')),
      spoil('data-id-dotdot', (m) => (m.properties.data_id = 'obs/../../../x')),
      spoil('href-escaped-dotdot', (m) => (m.links[0].href = `file://${pub}/obs/%2e%2e/%2e%2e/good.txt`)),
      spoil('href-ftp', (m) => (m.links[0].href = 'ftp://h/obs/good.txt')),
      spoil('href-wrong-bytes', (m) => (m.properties.integrity.value = Buffer.alloc(64, 1).toString('base64'))),
    ];
    await mkdir(spool);
    for (const [i, [name, body]] of hostile.entries()) await writeFile(join(spool, `0${i}-${name}.json`), body);
    const s = subscriber();
    await drain(s);
    // Alone: among messages for the same file the last one wins and the others are skipped.
    await writeFile(join(spool, '99-good.json'), JSON.stringify(good));
    await drain(s);
    expect(Buffer.compare(await readFile(join(mirror, 'obs/good.txt')), Buffer.from('good data'))).toBe(0);
    expect(reports.map((r) => r.relPath), logs.join("\n")).toEqual(["obs/good.txt"]);
    expect(s.applied).toBe(1);
    expect(s.setAside).toBe(hostile.length);
    const rejected = await readdir(join(spool, 'rejected'));
    const reasons: Record<string, string> = {};
    for (const [name] of hostile) {
      const reason = rejected.find((f) => f.includes(name) && /reason/.test(f));
      expect(reason, `${name} kept with a reason`).toBeDefined();
      reasons[name] = await readFile(join(spool, 'rejected', reason!), 'utf8');
    }
    expect(reasons['no-integrity']).toMatch(/integrity" is missing/);
    expect(reasons['links-not-array']).toMatch(/"links" must be an array/);
    expect(reasons['no-data-link']).toMatch(/no link with rel canonical, update or deletion/);
    expect(reasons['length-string']).toMatch(/needs "length"/);
    expect(reasons['pubtime-number']).toMatch(/pubtime/);
    expect(reasons['data-id-absolute']).toMatch(/absolute/);
    expect(reasons['data-id-dotdot']).toMatch(/\.\./);
    expect(reasons['href-escaped-dotdot']).toMatch(/leaves its folder once decoded/);
    expect(reasons['href-ftp']).toMatch(/ftp: scheme is not allowed/);
    expect(reasons['href-wrong-bytes']).toMatch(/sha512|identity|verif/i);
    expect((await readdir(mirror, { recursive: true })).filter((f) => !f.startsWith('.zpump'))).toEqual(['obs', 'obs/good.txt']);
  });
});
