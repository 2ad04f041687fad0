// The subscriber's rules on local file: URLs (no server needed): several messages for one file
// (the last wins), newer-wins against what is in place, removals and renames.

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
