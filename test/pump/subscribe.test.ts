// The subscriber's rules on local file: URLs (no server needed): several messages for one file
// (the last wins), newer-wins against what is in place, removals and renames.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderAnnouncement } from '../../src/format/announcement.js';
import { createSpoolSink, createSpoolSource } from '../../src/pump/bus/spool.js';
import { buildFileMessage, buildRemoveMessage } from '../../src/pump/message.js';
import { Subscriber, describeReport, type ApplyReport } from '../../src/pump/subscribe.js';
import { startFaultServer, type FaultServer } from '../helpers/fault-server.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
let pub: string;
let mirror: string;
let reports: ApplyReport[];
let logs: string[];
const subscriber = () =>
  new Subscriber({ dir: mirror, schemes: ['file'], engine: 'js', retries: 1, retryDelayMs: 10, report: (r) => reports.push(r), log: (l) => logs.push(l) });
const announce = async (rel: string, fileOp?: Record<string, string>) =>
  new TextEncoder().encode(renderAnnouncement((await buildFileMessage({ path: join(pub, rel), root: pub, baseUrl: `file://${pub}/`, engine: 'js', ...(fileOp ? { fileOp } : {}) })).message));

beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  pub = join(tmp.path, 'pub');
  mirror = join(tmp.path, 'mirror');
  await mkdir(pub);
  await mkdir(mirror);
  reports = [];
  logs = [];
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('Subscriber', () => {
  it('applies only the last of several messages for one file, none half-applied', async () => {
    const spool = join(tmp.path, 'spool');
    const sink = await createSpoolSink(spool);
    const versions = [seededBytes(3 << 20, 1), seededBytes(3 << 20, 2), seededBytes(3 << 20, 3)];
    for (const [i, v] of versions.entries()) {
      await writeFile(join(pub, 'f.bin'), v);
      const t = new Date(Date.UTC(2026, 0, 1, 0, 0, i));
      await utimes(join(pub, 'f.bin'), t, t);
      await sink.post((await buildFileMessage({ path: join(pub, 'f.bin'), root: pub, baseUrl: `file://${pub}/`, engine: 'js' })).message);
    }
    // The server now has only the last version: the older messages could not be applied anyway.
    const s = subscriber();
    await s.run(createSpoolSource(spool), { once: true, prefetch: 4, signal: new AbortController().signal });
    expect(Buffer.compare(await readFile(join(mirror, 'f.bin')), Buffer.from(versions[2]!))).toBe(0);
    expect(reports.map((r) => r.action).filter((a) => a !== 'superseded')).toHaveLength(1);
    expect(reports.filter((r) => r.action === 'superseded')).toHaveLength(2);
    expect(s.setAside).toBe(0);
    expect((await readdir(spool)).filter((n) => n.endsWith('.json'))).toEqual([]);
  });

  it('never replaces a newer local file with an older message', async () => {
    await writeFile(join(pub, 'n.txt'), 'old version');
    const old = await announce('n.txt');
    await writeFile(join(mirror, 'n.txt'), 'newer local version');
    const future = new Date(Date.now() + 3600_000);
    await utimes(join(mirror, 'n.txt'), future, future);
    expect((await subscriber().applyBody(old)).action).toBe('older');
    expect(await readFile(join(mirror, 'n.txt'), 'utf8')).toBe('newer local version');
  });

  it('skips a file already in place (same size and mtime), e.g. a redelivered message', async () => {
    await writeFile(join(pub, 'r.bin'), seededBytes(2 << 20, 5));
    const body = await announce('r.bin');
    const s = subscriber();
    expect((await s.applyBody(body)).action).toBe('whole');
    expect((await s.applyBody(body)).action).toBe('up-to-date');
  });

  it('removes on a v03 remove message, but keeps a local file newer than the removal', async () => {
    await writeFile(join(mirror, 'gone.txt'), 'x');
    const past = new Date(Date.now() - 3600_000);
    await utimes(join(mirror, 'gone.txt'), past, past);
    const s = subscriber();
    const rm = new TextEncoder().encode(renderAnnouncement(buildRemoveMessage(pub, join(pub, 'gone.txt'), `file://${pub}/`)));
    expect((await s.applyBody(rm)).action).toBe('removed');
    await expect(stat(join(mirror, 'gone.txt'))).rejects.toThrow();
    expect((await s.applyBody(rm)).action).toBe('absent');
    await writeFile(join(mirror, 'gone.txt'), 'recreated later');
    const future = new Date(Date.now() + 3600_000);
    await utimes(join(mirror, 'gone.txt'), future, future);
    expect((await s.applyBody(rm)).action).toBe('older');
    // A removal of a file never received leaves no empty folders behind.
    const deep = new TextEncoder().encode(renderAnnouncement(buildRemoveMessage(pub, join(pub, 'x', 'y', 'z.txt'), `file://${pub}/`)));
    expect((await s.applyBody(deep)).action).toBe('absent');
    expect((await readdir(mirror)).includes('x')).toBe(false);
  });

  it('moves the local copy on a rename instead of fetching it again', async () => {
    const data = seededBytes(2 << 20, 8);
    await mkdir(join(pub, 'a'));
    await writeFile(join(pub, 'a', 'old.bin'), data);
    const s = subscriber();
    await s.applyBody(await announce('a/old.bin'));
    await mkdir(join(pub, 'b'));
    await (await import('node:fs/promises')).rename(join(pub, 'a', 'old.bin'), join(pub, 'b', 'new.bin'));
    const report = await s.applyBody(await announce('b/new.bin', { rename: 'a/old.bin' }));
    expect(report).toMatchObject({ action: 'up-to-date', renamedFrom: 'a/old.bin' });
    expect(Buffer.compare(await readFile(join(mirror, 'b', 'new.bin')), Buffer.from(data))).toBe(0);
    await expect(stat(join(mirror, 'a', 'old.bin'))).rejects.toThrow();
  });
});

describe('Subscriber trusts a message only as far as it can check it', () => {
  const edit = async (rel: string, patch: Record<string, unknown>, fileOp?: Record<string, string>) =>
    new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(await announce(rel, fileOp))), ...patch }));

  it('verifies an md5 identity: the right digest is applied, a wrong one never lands', async () => {
    const data = seededBytes(1 << 16, 21);
    await writeFile(join(pub, 'm.bin'), data);
    const md5 = createHash('md5').update(data).digest('base64');
    const s = subscriber();
    expect((await s.applyBody(await edit('m.bin', { identity: { method: 'md5', value: md5 } }))).action).toBe('whole');
    expect(Buffer.compare(await readFile(join(mirror, 'm.bin')), Buffer.from(data))).toBe(0);
    const wrong = createHash('md5').update('other').digest('base64');
    await writeFile(join(pub, 'w.bin'), data);
    await expect(s.applyBody(await edit('w.bin', { identity: { method: 'md5', value: wrong } }))).rejects.toThrow(/md5 identity/);
    await expect(stat(join(mirror, 'w.bin'))).rejects.toThrow();
  });

  it('refuses identity method none unless unverified files are accepted', async () => {
    await writeFile(join(pub, 'n.bin'), 'no identity');
    const body = await edit('n.bin', { identity: { method: 'none', value: '' } });
    await expect(subscriber().applyBody(body)).rejects.toThrow(/--accept-unverified/);
    await expect(stat(join(mirror, 'n.bin'))).rejects.toThrow();
    const trusting = new Subscriber({ dir: mirror, schemes: ['file'], engine: 'js', acceptUnverified: true, report: () => {}, log: () => {} });
    expect((await trusting.applyBody(body)).action).toBe('whole');
    expect(await readFile(join(mirror, 'n.bin'), 'utf8')).toBe('no identity');
  });

  it('clamps an mtime far in the future to now, so a later real update still wins', async () => {
    await writeFile(join(pub, 'f.txt'), 'first');
    const s = subscriber();
    expect((await s.applyBody(await edit('f.txt', { mtime: '99991231T235959' }))).action).toBe('whole');
    expect(logs.join('\n')).toMatch(/more than a day ahead; taken as now/);
    expect((await stat(join(mirror, 'f.txt'))).mtimeMs).toBeLessThan(Date.now() + 60_000);
    await writeFile(join(pub, 'f.txt'), 'second');
    const later = new Date(Date.now() + 5_000);
    await utimes(join(pub, 'f.txt'), later, later);
    expect((await s.applyBody(await announce('f.txt'))).action).toBe('whole');
    expect(await readFile(join(mirror, 'f.txt'), 'utf8')).toBe('second');
  });

  it('removes nothing on a removal whose pubTime does not parse', async () => {
    await writeFile(join(mirror, 'keep.txt'), 'precious');
    const past = new Date(Date.now() - 3600_000);
    await utimes(join(mirror, 'keep.txt'), past, past);
    const rm = JSON.parse(renderAnnouncement(buildRemoveMessage(pub, join(pub, 'keep.txt'), `file://${pub}/`))) as Record<string, unknown>;
    await expect(subscriber().applyBody(new TextEncoder().encode(JSON.stringify({ ...rm, pubTime: 'garbage' })))).rejects.toThrow(/pubTime/);
    expect(await readFile(join(mirror, 'keep.txt'), 'utf8')).toBe('precious');
  });

  it('fetches a renamed file when the moved content does not match the identity', async () => {
    await writeFile(join(pub, 'a.txt'), 'the announced content');
    await writeFile(join(mirror, 'keep.txt'), 'something else entirely');
    const future = new Date(Date.now() + 3600_000); // "newer" than the message: must not matter
    await utimes(join(mirror, 'keep.txt'), future, future);
    const report = await subscriber().applyBody(await announce('a.txt', { rename: 'keep.txt' }));
    expect(report).toMatchObject({ action: 'whole', renamedFrom: 'keep.txt' });
    expect(await readFile(join(mirror, 'a.txt'), 'utf8')).toBe('the announced content');
    await expect(stat(join(mirror, 'keep.txt'))).rejects.toThrow();
  });

  it('escapes control characters of message fields in its log and reports', async () => {
    const s = subscriber();
    const forged = 'x.txt\nrefused 2026-fake.json: forged line';
    await writeFile(join(pub, 'x.txt'), 'x');
    await s.take({ body: await edit('x.txt', { relPath: forged }), id: 'm', ack: async () => {}, setAside: async () => {} }, true);
    expect(s.setAside).toBe(1);
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(line).not.toMatch(/[\n\r]/);
    expect(logs.join('')).toContain('x.txt\\nrefused');
    const line = describeReport({ id: 'i', relPath: forged, action: 'up-to-date', seconds: 0, attempts: 1 }, String);
    expect(line).not.toContain('\n');
  });
});

describe('Subscriber waits', () => {
  let server: FaultServer;
  beforeEach(async () => {
    server = await startFaultServer();
  });
  afterEach(async () => {
    await server.stop();
  });
  const httpMessage = async (rel: string, content: string, mtime: Date) => {
    await mkdir(dirname(join(pub, rel)), { recursive: true });
    await writeFile(join(pub, rel), content);
    await utimes(join(pub, rel), mtime, mtime);
    server.files.set(`/${rel}`, new TextEncoder().encode(content));
    const built = await buildFileMessage({ path: join(pub, rel), root: pub, baseUrl: server.url, engine: 'js' });
    return new TextEncoder().encode(renderAnnouncement(built.message));
  };
  const waitFor = async (what: () => boolean) => {
    while (!what()) await sleep(20);
  };

  it('a newer message for the same file cuts short the backoff of an older one still retrying', async () => {
    const older = await httpMessage('s/f.txt', 'old', new Date(Date.UTC(2026, 0, 1)));
    const s = new Subscriber({ dir: mirror, engine: 'js', retries: 5, retryDelayMs: 3600_000, report: () => {}, log: (l) => logs.push(l) });
    const first = s.applyBody(older);
    await waitFor(() => logs.some((l) => /attempt 1 failed/.test(l)));
    const attemptsBefore = server.requests.get('/s/f.txt');
    server.failing = false;
    const newer = await httpMessage('s/f.txt', 'new', new Date(Date.UTC(2026, 0, 2)));
    const [a, b] = await Promise.all([first, s.applyBody(newer)]);
    expect(a).toMatchObject({ action: 'superseded', attempts: 1 });
    expect(b.action).toBe('whole');
    expect(await readFile(join(mirror, 's', 'f.txt'), 'utf8')).toBe('new');
    expect(server.requests.get('/s/f.txt')).toBe(attemptsBefore! + 1); // the older one was not tried again
  });

  it('stops waiting on a retry backoff or a lock when its signal aborts, leaving the message unapplied', async () => {
    const body = await httpMessage('t.txt', 'content', new Date());
    const stop = new AbortController();
    const s = new Subscriber({ dir: mirror, engine: 'js', retries: 5, retryDelayMs: 3600_000, signal: stop.signal, report: () => {}, log: (l) => logs.push(l) });
    const taken = { acked: 0, setAside: 0 };
    const delivery = { body, id: 'm1', ack: async () => { taken.acked++; }, setAside: async () => { taken.setAside++; } };
    const running = s.take(delivery, true);
    await waitFor(() => logs.some((l) => /attempt 1 failed/.test(l)));
    stop.abort();
    await running;
    expect(taken).toEqual({ acked: 0, setAside: 0 });
    expect(s.leftForLater).toBe(1);
    // The same during a lock wait: another live writer holds the file's lock.
    await writeFile(join(mirror, '.t.txt.zpump-lock'), `${hostname()} ${process.pid} now\n`);
    server.failing = false;
    const stop2 = new AbortController();
    const s2 = new Subscriber({ dir: mirror, engine: 'js', signal: stop2.signal, report: () => {}, log: () => {} });
    const waiting = s2.take(delivery, true);
    await sleep(300);
    stop2.abort();
    await waiting;
    expect(taken).toEqual({ acked: 0, setAside: 0 });
    expect(s2.leftForLater).toBe(1);
    await expect(stat(join(mirror, 't.txt'))).rejects.toThrow();
  });
});
