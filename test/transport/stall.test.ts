// A server that stops sending must cost --stall-timeout, not minutes: the transfer is abandoned
// with exit 1 (E_NETWORK), the target stays as it was and no temporary is left. Each engine, the
// control-file fetch, a server that never answers (http and sftp), and subscribe.

import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';
import { startSshd, type SshdServer } from '../helpers/sshd.js';
import { ZpumpError } from '../../src/errors.js';
import { createSftpSource } from '../../src/transport/sftp.js';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { pathToFileURL } from 'node:url';

const NEW = seededBytes(1 << 20, 7);
const OLD = seededBytes(1 << 20, 8);
const hasZsync = requireTool('zsync', 'zsync');
const hasSshd = requireTool('sshd', 'openssh-server');
const hasPython = requireTool('python3', 'python3');

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

  it.skipIf(!hasPython)('a connection that is never accepted (the server\'s accept queue is full)', async () => {
    // python3: a listening socket that never accepts; node's own servers always accept.
    const listener = execa('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { reject: false, buffer: false });
    const fillers: Socket[] = [];
    try {
      const port = await new Promise<number>((resolve) => listener.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      // The first fills the queue; the next ones wait in SYN-SENT, as zpump's connection will.
      for (let i = 0; i < 3; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => undefined));
      await expectAbandoned(await runCli(['sync', '--engine', 'js', '--stall-timeout', '1', `http://127.0.0.1:${port}/new.bin.zsync`, target]));
    } finally {
      for (const f of fillers) f.destroy();
      listener.kill();
      await listener;
    }
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

/** The processes serving connections of the sshd listening on `port` (its descendants). */
function sessionsOf(port: number): number[] {
  const listening = /pid=(\d+)/.exec(execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' }))?.[1];
  if (!listening) throw new Error(`no sshd listening on ${port}`);
  const parents = new Map<number, number>();
  for (const entry of execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n')) {
    const [pid, ppid] = entry.trim().split(/\s+/).map(Number);
    parents.set(pid!, ppid!);
  }
  const below = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === Number(listening)) return true;
    return false;
  };
  return [...parents.keys()].filter(below);
}

describe.skipIf(!hasSshd)('an sftp server that stops answering mid-transfer', { timeout: 30_000 }, () => {
  let sshd: SshdServer;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('is abandoned after the stall timeout with E_NETWORK', async () => {
    const file = join(tmp.path, 'big.bin');
    await writeFile(file, seededBytes(16 << 20, 9));
    const url = `sftp://${sshd.user}@${sshd.host}:${sshd.port}${pathToFileURL(file).pathname}`;
    const source = await createSftpSource(url, { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath }, 1000);
    let stopped: number[] = [];
    try {
      let received = 0;
      const failure = await source.readRanges([{ start: 0, end: 16 << 20 }], (chunk) => {
        received += chunk.data.length;
        // Freeze the server's session once data flows: the connection stays open, nothing comes.
        if (stopped.length === 0) {
          stopped = sessionsOf(sshd.port);
          for (const pid of stopped) process.kill(pid, 'SIGSTOP');
        }
      }).then(() => undefined, (error: unknown) => error);
      expect(failure).toBeInstanceOf(ZpumpError);
      expect((failure as ZpumpError).code).toBe('E_NETWORK');
      expect((failure as ZpumpError).message).toMatch(/stalled/);
      expect(received).toBeLessThan(16 << 20);
    } finally {
      for (const pid of stopped) process.kill(pid, 'SIGCONT');
      await source.close();
    }
  });
});
