// Renames both ways. zpump's own (old relPath, then a removal of it) and sr3's (the publisher's
// absolute path as the old name, with or without a baseUrl path) are applied by zpump: the local
// copy moves when the old name maps safely inside --dir; otherwise the new name is fetched, a
// warning says why, and the old file is left alone. No rename refuses the message.

import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAnnouncement, renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { createSpoolSink, createSpoolSource } from '../../src/pump/bus/spool.js';
import { buildFileMessage } from '../../src/pump/message.js';
import { Subscriber, type ApplyReport } from '../../src/pump/subscribe.js';
import { watchTree } from '../../src/pump/watch.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const hasNginx = requireTool('nginx', 'nginx-light');

let tmp: DirectoryResult;
let pub: string;
let mirror: string;
let reports: ApplyReport[];
let logs: string[];
const data = seededBytes((2 << 20) + 123, 42);

beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  pub = join(tmp.path, 'pub');
  mirror = join(tmp.path, 'mirror');
  await mkdir(join(pub, 'obs'), { recursive: true });
  await mkdir(join(mirror, 'obs'), { recursive: true });
  reports = [];
  logs = [];
  // Both sides hold obs/a.bin; the publisher then renames it to obs/a-moved.bin.
  await writeFile(join(pub, 'obs', 'a.bin'), data);
  await writeFile(join(mirror, 'obs', 'a.bin'), data);
  await rename(join(pub, 'obs', 'a.bin'), join(pub, 'obs', 'a-moved.bin'));
});
afterEach(async () => {
  await tmp.cleanup();
});

const subscriber = (options: { renameStrip?: string; schemes?: string[] } = {}) =>
  new Subscriber({ dir: mirror, schemes: options.schemes ?? ['file'], engine: 'js', retries: 0, retryDelayMs: 10, report: (r) => reports.push(r), log: (l) => logs.push(l), ...(options.renameStrip ? { renameStrip: options.renameStrip } : {}) });

/** The message sr3's watch sends for the rename: the old name is the publisher's absolute path. */
async function sr3Rename(baseUrl: string): Promise<Uint8Array> {
  const built = await buildFileMessage({ path: join(pub, 'obs', 'a-moved.bin'), root: pub, baseUrl, engine: 'js' });
  const message: Announcement = { ...built.message, fileOp: { rename: join(pub, 'obs', 'a.bin') } };
  return new TextEncoder().encode(renderAnnouncement(message));
}

const mirrorFiles = async () => (await readdir(join(mirror, 'obs'))).filter((n) => !n.startsWith('.')).sort();

describe('renames from sr3 (absolute old path)', () => {
  it('baseUrl with a path: the path is taken off and the copy moves', async () => {
    const s = subscriber();
    const report = await s.applyBody(await sr3Rename(`file://${pub}`));
    expect(report).toMatchObject({ relPath: 'obs/a-moved.bin', action: 'up-to-date', renamedFrom: 'obs/a.bin' });
    expect(await mirrorFiles()).toEqual(['a-moved.bin']);
    expect(Buffer.compare(await readFile(join(mirror, 'obs', 'a-moved.bin')), data)).toBe(0);
  });

  it('an old path under neither baseUrl nor --rename-strip: fetches the new name, warns, leaves the old file', async () => {
    const s = subscriber();
    const elsewhere = new TextEncoder().encode(renderAnnouncement({ ...parseAnnouncement(await sr3Rename(`file://${pub}`)), fileOp: { rename: '/somewhere/else/obs/a.bin' } }));
    const report = await s.applyBody(elsewhere);
    expect(report.action).toBe('whole');
    expect(report.renamedFrom).toBeUndefined();
    expect(logs.join('\n')).toMatch(/old name does not map inside --dir .*neither baseUrl's path nor --rename-strip.*fetching the new name, any old copy stays/);
    expect(await mirrorFiles()).toEqual(['a-moved.bin', 'a.bin']);
  });

  it.each([
    ['a relative path with ..', '../../../etc/passwd', /contains "\.\."/],
    ['an absolute path mapping to zpump\'s own files', '/PUB/.zpump/rejected/x', /zpump|own/i],
  ])('a hostile old name (%s) is not refused: the new name is fetched, nothing else touched', async (_what, old, why) => {
    const s = subscriber();
    const parsed = parseAnnouncement(await sr3Rename(`file://${pub}`));
    const report = await s.applyBody(new TextEncoder().encode(renderAnnouncement({ ...parsed, fileOp: { rename: old.replace('/PUB', pub) } })));
    expect(report.action).toBe('whole');
    expect(logs.join('\n')).toMatch(why);
    expect(await mirrorFiles()).toEqual(['a-moved.bin', 'a.bin']);
  });
});

describe.skipIf(!hasNginx)('renames from sr3 over HTTP (baseUrl without a path)', () => {
  let nginx: NginxServer;
  let root: DirectoryResult;
  beforeAll(async () => {
    root = await dir({ unsafeCleanup: true });
    nginx = await startNginx({ root: root.path });
  });
  afterAll(async () => {
    await nginx?.stop();
    await root?.cleanup();
  });
  beforeEach(async () => {
    // nginx serves the publisher's tree from its own root.
    await mkdir(join(root.path, 'obs'), { recursive: true });
    await writeFile(join(root.path, 'obs', 'a-moved.bin'), data);
  });

  it('without --rename-strip: fetched whole, the old copy stays, with a warning', async () => {
    const s = subscriber({ schemes: ['http'] });
    const report = await s.applyBody(await sr3Rename(nginx.url.replace(/\/$/, '')));
    expect(report.action).not.toBe('up-to-date');
    expect(logs.join('\n')).toMatch(/does not map inside --dir/);
    expect(await mirrorFiles()).toEqual(['a-moved.bin', 'a.bin']);
    expect(Buffer.compare(await readFile(join(mirror, 'obs', 'a-moved.bin')), data)).toBe(0);
  });

  it('with --rename-strip the publisher\'s folder: the copy moves, nothing fetched', async () => {
    const s = subscriber({ schemes: ['http'], renameStrip: `${pub}/` });
    await nginx.clearLog();
    const report = await s.applyBody(await sr3Rename(nginx.url.replace(/\/$/, '')));
    expect(report).toMatchObject({ action: 'up-to-date', renamedFrom: 'obs/a.bin' });
    expect(await mirrorFiles()).toEqual(['a-moved.bin']);
    expect((await nginx.readLog()).filter((e) => e.method === 'GET')).toEqual([]);
  });
});

describe("zpump's own renames", () => {
  it('watch sends the rename then the removal of the old name; zpump moves the copy and finds nothing to remove', async () => {
    // Start from the state before the rename, watched.
    await rename(join(pub, 'obs', 'a-moved.bin'), join(pub, 'obs', 'a.bin'));
    const spool = join(tmp.path, 'spool');
    const sink = await createSpoolSink(spool);
    const stop = new AbortController();
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const posted: Announcement[] = [];
    const recording = { where: sink.where, close: () => sink.close(), post: async (m: Announcement) => { posted.push(m); await sink.post(m); } };
    const watching = watchTree(recording, { root: pub, baseUrl: `file://${pub}`, engine: 'js', settleMs: 300, initial: false, exclude: [], signal: stop.signal, log: () => undefined, onAnnounced: () => undefined, onReady: ready });
    await isReady;
    await rename(join(pub, 'obs', 'a.bin'), join(pub, 'obs', 'a-moved.bin'));
    const deadline = Date.now() + 15_000;
    while (posted.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    stop.abort();
    await watching;
    // The wire sequence: the rename (old relPath), then the removal of the old relPath.
    expect(posted.map((m) => [m.relPath, m.fileOp])).toEqual([
      ['obs/a-moved.bin', { rename: 'obs/a.bin' }],
      ['obs/a.bin', { remove: '' }],
    ]);
    const s = subscriber();
    await s.run(createSpoolSource(spool), { once: true, prefetch: 4, signal: new AbortController().signal });
    expect(reports.map((r) => [r.relPath, r.action, r.renamedFrom])).toEqual([
      ['obs/a-moved.bin', 'up-to-date', 'obs/a.bin'],
      ['obs/a.bin', 'absent', undefined],
    ]);
    expect(await mirrorFiles()).toEqual(['a-moved.bin']);
    expect(s.setAside).toBe(0);
    expect((await stat(join(mirror, 'obs', 'a-moved.bin'))).size).toBe(data.length);
  });
});
