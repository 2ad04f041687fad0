// The subscriber keeps the signature of the version it applied and, on the next message for the
// file, takes the blocks unchanged at the same offsets from the local copy without a scan. Every
// doubt falls back to the usual sync, and the file always ends right: a copy changed behind
// zpump's back (same size with its mtime restored, a new inode, truncated), a copy changed in a
// way the keys cannot see (caught by the final check, then redone with a scan), a kept signature
// of another block size or format, a corrupt entry. The clone start and the plain start give the
// same bytes, and kill -9 in the middle leaves the old copy as it was.

import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedSyncStats } from '../../src/backends/cached-sync.js';
import { renderAnnouncement, v03Time, type Announcement } from '../../src/format/announcement.js';
import { parseControlFile } from '../../src/format/control-file.js';
import { createSpoolSink } from '../../src/pump/bus/spool.js';
import { fineStats, signatureReuseStats } from '../../src/pump/signature-reuse.js';
import { buildFileMessage } from '../../src/pump/message.js';
import { Subscriber } from '../../src/pump/subscribe.js';
import { saveSignature, signatureCacheDir } from '../../src/local/signature-cache.js';
import { controlFile } from '../helpers/control-files.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { startCli } from '../helpers/pump.js';
import { requireTool } from '../helpers/require-tool.js';

const SIZE = (2 << 20) + 1234;
const v1 = seededBytes(SIZE, 401);
const v2 = new Uint8Array(v1);
for (let i = 7; i < SIZE; i += 97_003) v2[i] = v2[i]! ^ 0x77; // ~22 blocks rewritten in place

const sha512 = (b: Uint8Array) => createHash('sha512').update(b).digest('base64');
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe.skipIf(!requireTool('nginx', 'nginx-light'))('subscriber: the signature of the last version reused', () => {
  let tmp: DirectoryResult;
  let pub: string;
  let nginx: NginxServer;
  let slow: NginxServer;
  let n = 0;
  let mtime = Date.now() - 3600_000;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    pub = join(tmp.path, 'pub');
    await mkdir(pub);
    nginx = await startNginx({ root: pub });
    slow = await startNginx({ root: pub, limitRate: 8 << 10 });
  });
  afterAll(async () => {
    await nginx?.stop();
    await slow?.stop();
    await tmp?.cleanup();
  });

  /** Publish `bytes` as relPath and return its message (signature inline, one level). */
  async function publish(relPath: string, bytes: Uint8Array, o: { blockSize?: number; strongHash?: 'MD5'; server?: NginxServer } = {}): Promise<Announcement> {
    const path = join(pub, relPath);
    await writeFile(path, bytes);
    mtime += 60_000;
    await utimes(path, mtime / 1000, mtime / 1000);
    const signature = await controlFile({ input: path, urls: [relPath], blockSize: o.blockSize ?? 4096, ...(o.strongHash ? { strongHash: o.strongHash } : {}) });
    return {
      pubTime: v03Time(Date.now()), baseUrl: (o.server ?? nginx).url.replace(/\/$/, ''), relPath, size: bytes.length, mtime: v03Time(mtime),
      identity: { method: 'sha512', value: sha512(bytes) }, zsync: { kind: 'inline', bytes: signature }, extra: {},
    };
  }

  async function subscriberFor(sub: string) {
    const logs: string[] = [];
    const subscriber = new Subscriber({ dir: sub, report: () => undefined, log: (l) => logs.push(l), retries: 0, retryDelayMs: 10 });
    return { logs, apply: (m: Announcement) => subscriber.applyBody(Buffer.from(renderAnnouncement(m))) };
  }

  /** A subscriber tree that applied v1 of a fresh relPath through zpump; what to apply next. */
  async function atVersion1(o: { blockSize?: number; strongHash?: 'MD5' } = {}) {
    const relPath = `f${n++}.bin`;
    const sub = join(tmp.path, `sub-${relPath}`);
    await mkdir(sub);
    const s = await subscriberFor(sub);
    await s.apply(await publish(relPath, v1, o));
    const target = join(sub, relPath);
    expect(same(await readFile(target), v1)).toBe(true);
    return { relPath, sub, target, ...s };
  }

  const counts = () => ({ ...signatureReuseStats });
  const delta = (before: typeof signatureReuseStats) => ({
    reused: signatureReuseStats.reused - before.reused, redone: signatureReuseStats.redone - before.redone, ignored: signatureReuseStats.ignored - before.ignored,
  });

  it('keeps the signature under DIR/.zpump/signatures/ and reuses it: only the changed blocks fetched, no scan', async () => {
    const t = await atVersion1();
    expect((await readdir(signatureCacheDir(t.sub))).length).toBe(1);
    const before = counts();
    const report = await t.apply(await publish(t.relPath, v2));
    expect(delta(before)).toEqual({ reused: 1, redone: 0, ignored: 0 });
    expect(report).toMatchObject({ action: 'delta', engine: 'js' });
    expect(report.bytesFetched!).toBeLessThan(SIZE / 10);
    expect(same(await readFile(t.target), v2)).toBe(true);
    // And again from there: the entry was renewed with the new version's keys.
    const v3 = new Uint8Array(v2);
    v3[SIZE - 5] = v3[SIZE - 5]! ^ 1;
    await t.apply(await publish(t.relPath, v3));
    expect(delta(before)).toEqual({ reused: 2, redone: 0, ignored: 0 });
    expect(same(await readFile(t.target), v3)).toBe(true);
  });

  it.each([
    ['rewritten in place, same size, mtime restored', async (target: string) => {
      const st = await stat(target);
      const bytes = await readFile(target);
      bytes[100_000] = bytes[100_000]! ^ 1;
      await writeFile(target, bytes);
      await utimes(target, st.atime, st.mtime);
    }],
    ['replaced by a new inode with the same bytes and mtime', async (target: string) => {
      const st = await stat(target);
      await copyFile(target, `${target}.x`);
      await utimes(`${target}.x`, st.atime, st.mtime);
      await rename(`${target}.x`, target);
    }],
    ['truncated (mtime restored)', async (target: string) => {
      const st = await stat(target);
      await truncate(target, 1_000_000);
      await utimes(target, st.atime, st.mtime);
    }],
  ])('a local copy %s: the kept signature is not trusted, the file still ends right', async (_what, change) => {
    const t = await atVersion1();
    await change(t.target);
    const before = counts();
    await t.apply(await publish(t.relPath, v2));
    expect(delta(before)).toEqual({ reused: 0, redone: 0, ignored: 1 });
    expect(same(await readFile(t.target), v2)).toBe(true);
  });

  it('a copy changed where the keys cannot see: the final check catches it and the sync is redone with a scan', async () => {
    const t = await atVersion1();
    const st = await stat(t.target);
    const bytes = await readFile(t.target);
    bytes[200_000] = bytes[200_000]! ^ 1; // a block v2 does not change
    await writeFile(t.target, bytes);
    await utimes(t.target, st.atime, st.mtime);
    // The entry made to match the changed copy's keys: what a change that restored them all looks like.
    expect(await saveSignature(t.sub, t.relPath, t.target, parseControlFile(await controlFile({ input: await writeTemp(v1), urls: [t.relPath] })))).toBe(true);
    const before = counts();
    await t.apply(await publish(t.relPath, v2));
    expect(delta(before)).toEqual({ reused: 0, redone: 1, ignored: 0 });
    expect(t.logs.join('\n')).toMatch(/syncing again with a scan/);
    expect(same(await readFile(t.target), v2)).toBe(true);
  });

  async function writeTemp(bytes: Uint8Array): Promise<string> {
    const path = join(tmp.path, `v-${n++}.bin`);
    await writeFile(path, bytes);
    return path;
  }

  it.each([
    ['another block size', { blockSize: 8192 }],
    ['another format (spec 0.8, MD5 blocks)', { strongHash: 'MD5' as const }],
  ])('a kept signature of %s is ignored', async (_what, o) => {
    const t = await atVersion1(o);
    const before = counts();
    await t.apply(await publish(t.relPath, v2));
    expect(delta(before)).toEqual({ reused: 0, redone: 0, ignored: 1 });
    expect(same(await readFile(t.target), v2)).toBe(true);
  });

  it.each([
    ['garbage', () => seededBytes(5000, 9)],
    ['its keys line cut', () => Buffer.from('{"format":1,"relPa')],
    ['records cut short', (bytes: Buffer) => bytes.subarray(0, bytes.length - 100)],
  ])('a corrupt entry (%s) is ignored', async (_what, corrupt) => {
    const t = await atVersion1();
    const [name] = await readdir(signatureCacheDir(t.sub));
    const entry = join(signatureCacheDir(t.sub), name!);
    await writeFile(entry, corrupt(await readFile(entry)));
    const before = counts();
    await t.apply(await publish(t.relPath, v2));
    expect(delta(before)).toEqual({ reused: 0, redone: 0, ignored: 1 });
    expect(same(await readFile(t.target), v2)).toBe(true);
  });

  it('a two-level message: the fine signature is kept (fetched whole once) and compared with the next one', async () => {
    const relPath = `two${n++}.bin`;
    const sub = join(tmp.path, `sub-${relPath}`);
    await mkdir(sub);
    const s = await subscriberFor(sub);
    const publish2 = async (bytes: Uint8Array) => {
      const path = join(pub, relPath);
      await writeFile(path, bytes);
      mtime += 60_000;
      await utimes(path, mtime / 1000, mtime / 1000);
      const built = await buildFileMessage({ path, root: pub, baseUrl: nginx.url.replace(/\/$/, ''), levels: 2 });
      expect(built.message.zsync?.fine).toBeDefined();
      return built.message;
    };
    const before = { ...counts(), fetched: fineStats.fetched };
    await s.apply(await publish2(v1));
    expect(fineStats.fetched - before.fetched).toBe(1); // kept after the first (whole) download
    const report = await s.apply(await publish2(v2));
    expect(delta(before)).toEqual({ reused: 1, redone: 0, ignored: 1 }); // ignored: nothing kept yet for v1
    expect(report).toMatchObject({ action: 'delta', engine: 'js' });
    expect(report.bytesFetched!).toBeLessThan(SIZE / 10);
    expect(same(await readFile(join(sub, relPath)), v2)).toBe(true);
  });

  it('a copy zpump did not write (nothing kept): the fine file is fetched once, whole, and the two-level sync uses it', async () => {
    const relPath = `two${n++}.bin`;
    const sub = join(tmp.path, `sub-${relPath}`);
    await mkdir(sub);
    const s = await subscriberFor(sub);
    const target = join(sub, relPath);
    await writeFile(target, v1); // brought by other means: no kept signature for it
    await utimes(target, (mtime - 3600_000) / 1000, (mtime - 3600_000) / 1000);
    const path = join(pub, relPath);
    await writeFile(path, v2);
    mtime += 60_000;
    await utimes(path, mtime / 1000, mtime / 1000);
    const { message } = await buildFileMessage({ path, root: pub, baseUrl: nginx.url.replace(/\/$/, ''), levels: 2 });
    const fineSize = message.zsync!.fine!.size;
    const before = { ...counts(), fetched: fineStats.fetched };
    await nginx.clearLog();
    const report = await s.apply(message);
    const log = await nginx.readLog();
    expect(same(await readFile(target), v2)).toBe(true);
    expect(delta(before)).toEqual({ reused: 0, redone: 0, ignored: 1 });
    expect(fineStats.fetched - before.fetched).toBe(1);
    // One request for the fine file, the whole of it; none for its records again.
    const fine = log.filter((e) => e.path.endsWith('.zsync'));
    expect(fine.map((e) => e.bodyBytesSent)).toEqual([fineSize]);
    expect(report).toMatchObject({ action: 'delta', engine: 'js' });
    const data = log.filter((e) => !e.path.endsWith('.zsync')).reduce((t, e) => t + e.bodyBytesSent, 0);
    expect(data).toBeLessThan(SIZE / 10);
    // The fine file counts as fetched.
    expect(report.bytesFetched!).toBeGreaterThanOrEqual(fineSize + data - 4096);
  });

  it('a removal drops the kept signature with the file', async () => {
    const t = await atVersion1();
    expect(await readdir(signatureCacheDir(t.sub))).toHaveLength(1);
    const report = await t.apply({ pubTime: v03Time(Date.now()), baseUrl: nginx.url.replace(/\/$/, ''), relPath: t.relPath, size: 0, identity: { method: 'sha512', value: sha512(new Uint8Array(0)) }, fileOp: { remove: '' }, extra: {} });
    expect(report.action).toBe('removed');
    expect(await readdir(signatureCacheDir(t.sub))).toHaveLength(0);
  });

  it('the clone start and the plain start give byte-identical files', async () => {
    const outputs: Buffer[] = [];
    const grown = new Uint8Array(SIZE + 5000);
    grown.set(v2);
    grown.set(seededBytes(5000, 3), SIZE); // a longer new version: the copy is extended too
    for (const start of ['clone', 'copy-blocks'] as const) {
      const t = await atVersion1();
      const before = { ...cachedSyncStats };
      process.env.ZPUMP_START = start;
      try {
        await t.apply(await publish(t.relPath, grown));
      } finally {
        delete process.env.ZPUMP_START;
      }
      expect(start === 'clone' ? cachedSyncStats.clone - before.clone : cachedSyncStats.copyBlocks - before.copyBlocks).toBe(1);
      outputs.push(await readFile(t.target));
    }
    expect(same(outputs[0]!, grown)).toBe(true);
    expect(same(outputs[1]!, grown)).toBe(true);
  });

  it('kill -9 while the new version is being written leaves the old copy intact', async () => {
    const relPath = 'killed.bin';
    const sub = join(tmp.path, 'sub-killed');
    const spool = join(tmp.path, 'spool-killed');
    const sink = await createSpoolSink(spool);
    await sink.post(await publish(relPath, v1));
    const first = startCli(['subscribe', `spool:${spool}`, '--once', '--dir', sub]);
    expect(await first.exited(), first.stderr()).toBe(0);
    const target = join(sub, relPath);
    const before = await stat(target);
    expect(same(await readFile(target), v1)).toBe(true);
    // Served at 8 KiB/s: the changed blocks take seconds, the clone is long in place by then.
    await sink.post(await publish(relPath, v2, { server: slow }));
    await sink.close();
    const second = startCli(['subscribe', `spool:${spool}`, '--once', '--dir', sub]);
    const deadline = Date.now() + 20_000;
    const others = async () => (await readdir(sub)).filter((f) => f !== relPath && f !== '.zpump');
    while ((await others()).length === 0) {
      if (Date.now() > deadline) throw new Error(`no temporary appeared:\n${second.stderr()}`);
      await sleep(20);
    }
    await sleep(300);
    await second.kill('SIGKILL');
    const after = await stat(target);
    expect(after.ino).toBe(before.ino);
    expect(same(await readFile(target), v1)).toBe(true);
  });
});
