// A server that stops sending must cost --stall-timeout, not minutes: the transfer is abandoned
// with exit 1 (E_NETWORK), the target stays as it was and no temporary is left. Each engine, the
// control-file fetch, a server that never answers (http and sftp), and subscribe.

import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';

const NEW = seededBytes(1 << 20, 7);
const OLD = seededBytes(1 << 20, 8);
const hasZsync = requireTool('zsync', 'zsync');

let tmp: DirectoryResult;
let http: Server;
let silent: TcpServer;
const sockets = new Set<Socket>();
let base = '';
let silentPort = 0;
let control: Uint8Array;
let target = '';
let work = '';

beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'new.bin'), NEW);
  const made = await runCli(['make', '--engine', 'js', '--force', '-b', '4k', '-u', 'new.bin', '-o', join(tmp.path, 'new.bin.zsync'), join(tmp.path, 'new.bin')]);
  expect(made.exitCode, made.stderr).toBe(0);
  control = await readFile(join(tmp.path, 'new.bin.zsync'));
  // Headers and a few bytes, then silence (the connection stays open).
  http = createHttpServer((req, res) => {
    if (req.url === '/new.bin.zsync') { res.end(control); return; }
    if (req.url === '/stalling.zsync') {
      res.writeHead(200, { 'content-length': control.length });
      res.write(control.subarray(0, 10));
      return;
    }
    const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    res.writeHead(206, { 'content-range': `bytes ${start}-${NEW.length - 1}/${NEW.length}`, 'content-length': NEW.length - start });
    res.write(NEW.subarray(start, start + 100));
  });
  http.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
  // Accepts connections and never says a word (neither HTTP nor an SSH banner).
  silent = createTcpServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => undefined); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  http?.close();
  silent?.close();
  await tmp?.cleanup();
});

beforeEach(async () => {
  work = join(tmp.path, `w-${Math.random().toString(36).slice(2)}`);
  await mkdir(work);
  target = join(work, 't.bin');
  await writeFile(target, OLD);
});

async function expectAbandoned(run: { exitCode: number; stderr: string }): Promise<void> {
  expect(run.exitCode, run.stderr).toBe(1);
  expect(run.stderr).toMatch(/stalled/);
  expect(Buffer.from(await readFile(target)).equals(Buffer.from(OLD))).toBe(true);
  expect(await readdir(work)).toEqual(['t.bin']);
}

// Before --stall-timeout each attempt waited 30 s and was retried 4 times: these would time out.
describe('a stalling server', { timeout: 30_000 }, () => {
  it('js engine: the data transfer is abandoned', async () => {
    await expectAbandoned(await runCli(['sync', '--engine', 'js', '--stall-timeout', '1', `${base}new.bin.zsync`, target]));
  });

  it.skipIf(!hasZsync)('zsync engine (and auto, which picks it for http://): zsync is stopped', async () => {
    await expectAbandoned(await runCli(['sync', '--engine', 'zsync', '--stall-timeout', '1', `${base}new.bin.zsync`, target]));
    // Not handed to the js engine as if zsync had failed: it would wait for the same server.
    const auto = await runCli(['sync', '--stall-timeout', '1', `${base}new.bin.zsync`, target]);
    await expectAbandoned(auto);
    expect(auto.stderr).not.toMatch(/used the js engine/);
  });

  it('the control file fetch is abandoned', async () => {
    await expectAbandoned(await runCli(['sync', '--engine', 'js', '--stall-timeout', '1', `${base}stalling.zsync`, target]));
  });

  it('an http server that never answers', async () => {
    await expectAbandoned(await runCli(['sync', '--engine', 'js', '--stall-timeout', '1', `http://127.0.0.1:${silentPort}/new.bin.zsync`, target]));
  });

  it('an sftp server that never answers', async () => {
    const key = ssh2.utils.generateKeyPairSync('ed25519');
    await writeFile(join(tmp.path, 'id'), key.private, { mode: 0o600 });
    const run = await runCli(['sync', '--engine', 'js', '--stall-timeout', '1', '--ssh-key', join(tmp.path, 'id'),
      '-u', `sftp://nobody@127.0.0.1:${silentPort}/srv/new.bin`, join(tmp.path, 'new.bin.zsync'), target]);
    await expectAbandoned(run);
  });

  it('subscribe takes --stall-timeout too', async () => {
    const spool = join(tmp.path, `spool-${Math.random().toString(36).slice(2)}`);
    const posted = await runCli(['announce', '--base-url', base, '--root', tmp.path, '--post', `spool:${spool}`, join(tmp.path, 'new.bin')]);
    expect(posted.exitCode, posted.stderr).toBe(0);
    await writeFile(join(work, 'new.bin'), OLD);
    await utimes(join(work, 'new.bin'), 946684800, 946684800); // older than the announced file
    const run = await runCli(['subscribe', `spool:${spool}`, '--dir', work, '--once', '--retries', '0', '--engine', 'js', '--stall-timeout', '1']);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/stalled/);
    expect(Buffer.from(await readFile(join(work, 'new.bin'))).equals(Buffer.from(OLD))).toBe(true);
    expect((await readdir(work)).filter((n) => n.includes('zpump-tmp'))).toEqual([]);
  });

  it('refuses a stall timeout that is not a positive number of seconds', async () => {
    for (const bad of ['0', '-1', 'soon']) {
      const run = await runCli(['sync', '--stall-timeout', bad, `${base}new.bin.zsync`, target]);
      expect(run.exitCode, `${bad}: ${run.stderr}`).toBe(2);
    }
  });
});
