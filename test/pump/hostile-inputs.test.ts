// The second adversarial pass (after WIS2 messages, renames and two-level signatures arrived):
// each case here got through before its fix. The built CLI runs against a spool and a small HTTP
// server on 127.0.0.1 that counts the requests per path, so "nothing was fetched from outside
// baseUrl" is asserted from what the server saw.

import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { link, mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseV03Time, renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { buildFileMessage, checkMessage } from '../../src/pump/message.js';
import { logSafe } from '../../src/pump/subscribe.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startFaultServer, type FaultServer } from '../helpers/fault-server.js';
import { requireTool } from '../helpers/require-tool.js';

const hasZsync = requireTool('zsync', 'zsync') && requireTool('zsyncmake', 'zsync');

describe('hostile inputs, second pass', () => {
  let tmp: DirectoryResult;
  let server: FaultServer;
  let n = 0;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    server = await startFaultServer();
    server.failing = false;
  });
  afterAll(async () => {
    await server?.stop();
    await tmp?.cleanup();
  });

  /** A fresh spool and tree; `publish` puts bytes on the server under /pub/ and announces them. */
  const scene = async () => {
    const root = join(tmp.path, `s${n++}`);
    const [pub, spool, tree] = ['pub', 'spool', 'tree'].map((d) => join(root, d)) as [string, string, string];
    for (const d of [pub, spool, tree]) await mkdir(d, { recursive: true });
    let posted = 0;
    return {
      root, spool, tree,
      async publish(relPath: string, bytes: Uint8Array, options: { levels?: 1 | 2; threshold?: number } = {}): Promise<Announcement> {
        await writeFile(join(pub, relPath), bytes);
        server.files.set(`/pub/${relPath}`, bytes);
        return (await buildFileMessage({ path: join(pub, relPath), root: pub, baseUrl: `${server.url}pub/`, levels: options.levels ?? 1, threshold: options.threshold ?? 1 })).message;
      },
      async post(message: Announcement | Record<string, unknown>): Promise<void> {
        const text = 'relPath' in message && 'extra' in message ? renderAnnouncement(message as Announcement) : JSON.stringify(message);
        await writeFile(join(spool, `${String(++posted).padStart(4, '0')}.json`), text);
      },
      run: (...extra: string[]) => runCli(['subscribe', `spool:${spool}`, '--dir', tree, '--once', '--retries', '0', ...extra]),
      async reasons(): Promise<string> {
        const names = await readdir(join(spool, 'rejected')).catch(() => [] as string[]);
        const texts = await Promise.all(names.filter((f) => f.endsWith('.reason.txt')).map((f) => readFile(join(spool, 'rejected', f), 'utf8')));
        return texts.join('');
      },
    };
  };

  it.skipIf(!hasZsync)("a gzip-inside signature (inline or referenced) is refused: zsync would fetch its Z-URL from outside baseUrl", async () => {
    const s = await scene();
    const plain = Buffer.from(seededBytes(200_000, 7)).toString('base64');
    const work = join(s.root, 'gz');
    await mkdir(work);
    await writeFile(join(work, 'g.txt'), plain);
    // zsyncmake -z: g.txt.gz and a signature whose Z-URL: line names a folder outside baseUrl.
    await execa('zsyncmake', ['-z', '-u', `${server.url}outside/g.txt.gz`, 'g.txt'], { cwd: work });
    server.files.set('/outside/g.txt.gz', await readFile(join(work, 'g.txt.gz')));
    const signature = await readFile(join(work, 'g.txt.zsync'));
    server.files.set('/pub/g.txt.zsync', signature);
    server.files.set('/pub/g.txt', signature); // whatever zsync would take for its control file
    const old = Buffer.from(plain);
    old.fill(65, 0, 5000);
    for (const name of ['inline.txt', 'ref.txt']) {
      await writeFile(join(s.tree, name), old);
      await utimes(join(s.tree, name), new Date('2020-01-01'), new Date('2020-01-01'));
    }
    const common = { pubTime: '20261201T000000', mtime: '20261201T000000', baseUrl: `${server.url}pub/`, retrievePath: 'g.txt', size: plain.length, identity: { method: 'sha512', value: createHash('sha512').update(plain).digest('base64') } };
    await s.post({ ...common, relPath: 'inline.txt', zsync: { encoding: 'base64', value: signature.toString('base64') } });
    await s.post({ ...common, relPath: 'ref.txt', zsync: { retrievePath: 'g.txt.zsync', size: signature.length } });
    const run = await s.run('--engine', 'auto');
    expect(run.exitCode, run.stderr).toBe(1);
    expect(server.requests.get('/outside/g.txt.gz') ?? 0).toBe(0);
    expect((await s.reasons()).match(/describes gzip-inside data/g)).toHaveLength(2);
    expect((await readFile(join(s.tree, 'inline.txt'))).equals(old)).toBe(true);
  });

  it("the file gets the message's time, never the signature's MTime: a year-2100 MTime does not freeze it", async () => {
    const s = await scene();
    const v1 = seededBytes(100_000, 1);
    const m1 = await s.publish('f.bin', v1);
    expect(m1.zsync?.kind).toBe('inline');
    // No mtime in the message, and an MTime far ahead in its signature.
    const header = Buffer.from((m1.zsync as { bytes: Uint8Array }).bytes).toString('latin1').replace(/MTime: [^\n]*/, 'MTime: Fri, 31 Dec 2100 00:00:00 +0000');
    expect(header).toContain('MTime: Fri, 31 Dec 2100');
    const hostile = { ...m1, mtime: undefined, zsync: { kind: 'inline' as const, bytes: new Uint8Array(Buffer.from(header, 'latin1')) } };
    await s.post(hostile);
    const first = await s.run();
    expect(first.exitCode, first.stderr).toBe(0);
    expect(Math.abs((await stat(join(s.tree, 'f.bin'))).mtimeMs - parseV03Time(m1.pubTime)!)).toBeLessThanOrEqual(1);
    // A real update afterwards is applied, not skipped as "older".
    await new Promise((r) => setTimeout(r, 20));
    const v2 = seededBytes(100_000, 2);
    await s.post(await s.publish('f.bin', v2));
    const second = await s.run();
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).not.toMatch(/newer than this message/);
    expect((await readFile(join(s.tree, 'f.bin'))).equals(Buffer.from(v2))).toBe(true);
  });

  it('a local copy whose mtime is far ahead does not make every real update "older"', async () => {
    const s = await scene();
    await writeFile(join(s.tree, 'g.bin'), seededBytes(50_000, 3));
    await utimes(join(s.tree, 'g.bin'), new Date('2100-01-01'), new Date('2100-01-01'));
    const fresh = seededBytes(50_000, 4);
    await s.post(await s.publish('g.bin', fresh));
    const run = await s.run();
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await readFile(join(s.tree, 'g.bin'))).equals(Buffer.from(fresh))).toBe(true);
  });

  it('a file whose name is near NAME_MAX (250 bytes) can be locked and applied', async () => {
    const s = await scene();
    const name = `${'n'.repeat(246)}.bin`;
    await s.post(await s.publish(name, seededBytes(5000, 9), { threshold: 1 << 20 }));
    const run = await s.run();
    expect(run.exitCode, run.stderr).toBe(0);
    expect((await readFile(join(s.tree, name))).equals(Buffer.from(seededBytes(5000, 9)))).toBe(true);
    expect(await readdir(s.tree)).toEqual([name]);
  });

  it("zpump's own names are refused in any letter case (case-insensitive file systems)", async () => {
    const s = await scene();
    const m = await s.publish('k.txt', new TextEncoder().encode('k\n'), { threshold: 1 << 20 });
    for (const relPath of ['.ZPUMP/rejected/x.json', '.k.txt.ZPUMP-LOCK', 'd/.Zpump/signatures/x', 'a.ZPUMP-TMP']) {
      expect(() => checkMessage({ ...m, relPath }), relPath).toThrow(/zpump's own files/);
    }
  });

  it('bidi controls in message fields are escaped in the log', () => {
    expect(logSafe('evil\u202etxt.exe \u2066x\u2069')).toBe('evil\\u202etxt.exe \\u2066x\\u2069');
  });
});

describe('WIS2 times out of range are no times', () => {
  it('rolls nothing over: February 31st, 25 o\'clock, second 99, year 0099 and offset +24:00 are refused', async () => {
    const { v03FromRfc3339 } = await import('../../src/format/wnm.js');
    for (const bad of ['2026-02-31T00:00:00Z', '2026-11-24T25:00:00Z', '2026-11-24T10:61:00Z', '2026-11-24T10:00:99Z', '0099-01-01T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-24T10:00:00+24:00']) {
      expect(v03FromRfc3339(bad), bad).toBeUndefined();
    }
    expect(v03FromRfc3339('2016-12-31T23:59:60Z')).toBe('20161231T235959'); // a leap second
    expect(v03FromRfc3339('2026-11-24T18:27:30.5+02:00')).toBe('20261124T162730.500');
  });
});

describe('redirects from the data server', () => {
  // Followed to any http(s) URL (transport/http.ts says why that is safe), never to file:, and
  // what arrives is held to the identity like any other bytes.
  let tmp: DirectoryResult;
  let server: Server;
  let url = '';
  const secret = new TextEncoder().encode('a secret elsewhere on the server\n');
  const wanted = new TextEncoder().encode('the announced content\n');
  const seen: string[] = [];
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      const to: Record<string, string> = { '/pub/to-file.txt': 'file:///etc/passwd', '/pub/to-secret.txt': '/secret.txt', '/pub/to-good.txt': `http://localhost:${(server.address() as AddressInfo).port}/mirror/good.txt` };
      const location = to[req.url ?? ''];
      if (location) return void res.writeHead(302, { location }).end();
      const body = req.url === '/secret.txt' ? secret : req.url === '/mirror/good.txt' ? wanted : undefined;
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await tmp?.cleanup();
  });

  it('never to file:, and a redirect to other bytes is refused by the identity; one to a mirror with the right bytes is applied', async () => {
    const spool = join(tmp.path, 'spool');
    const tree = join(tmp.path, 'tree');
    await mkdir(spool);
    await mkdir(tree);
    const identity = { method: 'sha512', value: createHash('sha512').update(wanted).digest('base64') };
    for (const name of ['to-file.txt', 'to-secret.txt', 'to-good.txt']) {
      await writeFile(join(spool, `${name}.json`), JSON.stringify({ pubTime: '20261201T000000', baseUrl: `${url}pub/`, relPath: name, size: wanted.length, identity }));
    }
    const run = await runCli(['subscribe', `spool:${spool}`, '--dir', tree, '--once', '--retries', '0']);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/refused to-file\.txt\.json: cannot follow file:\/\/\/etc\/passwd: not http\(s\)/);
    expect(run.stderr).toMatch(/refused to-secret\.txt\.json: .*does not match the announced sha512 identity/);
    expect(run.stderr).not.toContain('root:');
    expect(seen).toContain('/secret.txt');
    expect((await readdir(tree)).filter((n) => n !== '.zpump')).toEqual(['to-good.txt']);
    expect(await readFile(join(tree, 'to-good.txt'), 'utf8')).toBe('the announced content\n');
  });
});

describe('a lock never outlives its process', () => {
  // subscribe exits by process.exit when work (a long scan) is still running 3 s after SIGTERM;
  // its lock then blocked the file for 6 hours on every other host sharing the folder.
  it('is removed when the process exits while holding it, by process.exit or by a signal', async () => {
    const tmp = await dir({ unsafeCleanup: true });
    try {
      const lockModule = new URL('../../dist/local/lock-file.js', import.meta.url).href;
      for (const ending of ['process.exit(143)', "process.kill(process.pid, 'SIGTERM')"]) {
        const target = join(tmp.path, `t${ending.length}.bin`);
        const script = `const { withFileLock, lockPathFor } = await import(${JSON.stringify(lockModule)});
          await withFileLock(${JSON.stringify(target)}, async () => { console.log('locked ' + lockPathFor(${JSON.stringify(target)})); setTimeout(() => ${ending}, 50); await new Promise(() => setInterval(() => {}, 1000)); });`;
        const run = await execa(process.execPath, ['--input-type=module', '-e', script], { reject: false });
        expect(run.stdout, run.stderr).toMatch(/^locked /);
        expect(await readdir(tmp.path), ending).toEqual([]);
      }
    } finally {
      await tmp.cleanup();
    }
  });
});

describe("temporaries of two hosts sharing a folder", () => {
  it('get distinct owner labels even when the host names differ only in a dot or after 40 characters', async () => {
    const { hostLabelOf } = await import('../../src/local/temp-owner.js');
    const long = 'a-rather-long-host-name-in-a-big-cluster-node';
    const pairs = [['node.a', 'node_a'], [`${long}-0001`, `${long}-0002`], ['', 'host']];
    for (const [a, b] of pairs) {
      expect(hostLabelOf(a!), `${a} / ${b}`).not.toBe(hostLabelOf(b!));
      for (const label of [hostLabelOf(a!), hostLabelOf(b!)]) expect(label).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    }
    expect(hostLabelOf('vm')).toBe('vm');
  });
});

describe('a spool entry that is not JSON', () => {
  it("is refused without quoting its content (a hard link to a local file would leak it to the log and rejected/)", async () => {
    const tmp = await dir({ unsafeCleanup: true });
    try {
      const spool = join(tmp.path, 'spool');
      const tree = join(tmp.path, 'tree');
      await mkdir(spool);
      await mkdir(tree);
      const secret = join(tmp.path, 'secret');
      await writeFile(secret, 'root:x:0:0:hunter2\n');
      await link(secret, join(spool, '0001.json'));
      await writeFile(join(spool, '0002.json'), '{"a": hunter2}');
      const run = await runCli(['subscribe', `spool:${spool}`, '--dir', tree, '--once']);
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr.match(/not valid JSON \(unexpected text; content not shown\)/g)).toHaveLength(2);
      const reasons = await Promise.all((await readdir(join(spool, 'rejected'))).filter((n) => n.endsWith('.reason.txt')).map((n) => readFile(join(spool, 'rejected', n), 'utf8')));
      expect(reasons).toHaveLength(2);
      for (const text of [run.stderr, ...reasons]) expect(text).not.toMatch(/root|hunter2/);
    } finally {
      await tmp.cleanup();
    }
  });
});

describe('breaking a stale lock', () => {
  it('gives back a lock that another writer took after it was judged stale', async () => {
    const { breakStaleLock, lockPathFor } = await import('../../src/local/lock-file.js');
    const tmp = await dir({ unsafeCleanup: true });
    try {
      const target = join(tmp.path, 'f.bin');
      const path = lockPathFor(target);
      // Judged stale: a dead owner's text. Meanwhile that lock went and a live writer made its own.
      await writeFile(path, 'host 999999 fresh-owner\n');
      await breakStaleLock(target, 'host 4242 dead-owner\n');
      expect(await readFile(path, 'utf8')).toBe('host 999999 fresh-owner\n');
      // The one judged stale is removed; nothing else is left.
      await writeFile(path, 'host 4242 dead-owner\n');
      await breakStaleLock(target, 'host 4242 dead-owner\n');
      expect(await readdir(tmp.path)).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });
});

describe('a data server that answers without what was asked', () => {
  // Each used to hang the subscriber for good: a truncated file (200 with fewer bytes, or a 206
  // for other bytes) made it ask again at once, forever (tens of thousands of requests a
  // second); a 206 streaming without end was read without end (GBs, bytes outside the ranges dropped).
  let server: Server;
  let url = '';
  let endlessBytes = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/pub/short.txt') return void res.writeHead(200, { 'content-length': '3' }).end('hel');
      if (req.url === '/pub/elsewhere.txt') return void res.writeHead(206, { 'content-range': 'bytes 100-102/200', 'content-length': '3' }).end('hel');
      res.writeHead(206, { 'content-range': 'bytes 100-199/200' });
      const junk = Buffer.alloc(65536, 120);
      const pump = (): void => {
        while (!res.destroyed && endlessBytes < 1 << 30) {
          endlessBytes += junk.length;
          if (!res.write(junk)) return void res.once('drain', pump);
        }
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('ends each message with a reason after the bounded retries', async () => {
    const tmp = await dir({ unsafeCleanup: true });
    try {
      const spool = join(tmp.path, 'spool');
      const tree = join(tmp.path, 'tree');
      await mkdir(spool);
      await mkdir(tree);
      const body = new TextEncoder().encode('hello\n');
      const identity = { method: 'sha512', value: createHash('sha512').update(body).digest('base64') };
      for (const name of ['short.txt', 'elsewhere.txt', 'endless.txt']) {
        await writeFile(join(spool, `${name}.json`), JSON.stringify({ pubTime: '20261201T000000', baseUrl: `${url}pub/`, relPath: name, size: body.length, identity }));
      }
      const run = await runCli(['subscribe', `spool:${spool}`, '--dir', tree, '--once', '--retries', '0']);
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr.match(/held none of the bytes asked for/g)).toHaveLength(2);
      expect(run.stderr).toMatch(/refused endless\.txt\.json: .*sent more than the 6 bytes of the ranges asked for/);
      expect(endlessBytes).toBeLessThan(64 << 20);
      expect((await readdir(tree)).filter((n) => n !== '.zpump')).toEqual([]);
    } finally {
      await tmp.cleanup();
    }
  });

  it.skipIf(!hasZsync)('stops the zsync client that asks again without end (206 for other bytes), then refuses with a reason', async () => {
    const tmp = await dir({ unsafeCleanup: true });
    try {
      const spool = join(tmp.path, 'spool');
      const tree = join(tmp.path, 'tree');
      const pub = join(tmp.path, 'pub');
      for (const d of [spool, tree, pub]) await mkdir(d);
      const data = seededBytes(300_000, 11);
      await writeFile(join(pub, 'elsewhere.txt'), data);
      const message = (await buildFileMessage({ path: join(pub, 'elsewhere.txt'), root: pub, baseUrl: `${url}pub/`, levels: 1, threshold: 1 })).message;
      const old = Buffer.from(data);
      old.fill(1, 0, 20_000);
      await writeFile(join(tree, 'elsewhere.txt'), old);
      await utimes(join(tree, 'elsewhere.txt'), new Date('2020-01-01'), new Date('2020-01-01'));
      await writeFile(join(spool, 'm.json'), renderAnnouncement(message));
      const run = await runCli(['subscribe', `spool:${spool}`, '--dir', tree, '--once', '--retries', '0', '--engine', 'zsync']);
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/zsync kept asking .* for data without end/);
      expect((await readFile(join(tree, 'elsewhere.txt'))).equals(old)).toBe(true);
      expect((await readdir(tree)).filter((n) => n !== '.zpump')).toEqual(['elsewhere.txt']);
    } finally {
      await tmp.cleanup();
    }
  });
});
