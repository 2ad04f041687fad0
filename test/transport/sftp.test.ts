// SFTP ranges against a real OpenSSH sshd on 127.0.0.1: exact bytes through the transport, zpump sync
// from sftp:// data URLs, and host keys that are refused unless known_hosts or a fingerprint vouches.

import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZpumpError } from '../../src/errors.js';
import { fingerprintOf, knownHostsEntries, normalizeFingerprint } from '../../src/transport/known-hosts.js';
import { createSftpSource, parseSftpUrl } from '../../src/transport/sftp.js';
import type { ByteRange, RangeChunk } from '../../src/transport/types.js';
import { runCli } from '../helpers/cli.js';
import { scatteredEdits, seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';
import { startSshd, type SshdServer } from '../helpers/sshd.js';

const run = promisify(execFile);

describe('sftp URLs', () => {
  it('takes user, port and the percent-decoded absolute path from the URL', () => {
    expect(parseSftpUrl('sftp://alice@example.org:2222/srv/data/a%20b.nc')).toEqual({
      host: 'example.org', port: 2222, user: 'alice', path: '/srv/data/a b.nc', location: 'sftp://alice@example.org:2222/srv/data/a%20b.nc',
    });
    const anon = parseSftpUrl('sftp://[::1]/x');
    expect(anon.host).toBe('::1');
    expect(anon.port).toBe(22);
    expect(anon.user.length).toBeGreaterThan(0);
  });

  it('refuses URLs that name no file, carry a password or do not parse', () => {
    for (const url of ['sftp://host/', 'sftp://host', 'sftp://u:secret@host/x', 'sftp://host/x?y', 'sftp://', 'sftp://host/%zz']) {
      expect(() => parseSftpUrl(url), url).toThrow(ZpumpError);
      try { parseSftpUrl(url); } catch (e) { expect((e as ZpumpError).code).toBe('E_USAGE'); }
    }
    expect(() => parseSftpUrl('sftp://u:secret@host/x')).toThrow(/passwords/);
  });

  it('checks the fingerprint form', () => {
    const fp = fingerprintOf(randomBytes(51));
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(normalizeFingerprint(`${fp}=`)).toBe(fp);
    expect(() => normalizeFingerprint('MD5:aa:bb')).toThrow(/SHA256:/);
  });
});

describe('known_hosts', () => {
  const key = (n: number) => Buffer.from(`key-${n}`).toString('base64');
  const hashed = (name: string) => {
    const salt = randomBytes(20);
    return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  };
  const text = [
    '# comment',
    '',
    `[127.0.0.1]:2222,other.example ssh-ed25519 ${key(1)} comment here`,
    `127.0.0.1 ssh-ed25519 ${key(2)}`,
    `*.example.org,!bad.example.org ecdsa-sha2-nistp256 ${key(3)}`,
    `${hashed('[10.0.0.1]:2200')} ssh-rsa ${key(4)}`,
    `@revoked [127.0.0.1]:2222 ssh-ed25519 ${key(5)}`,
    `@cert-authority * ssh-ed25519 ${key(6)}`,
  ].join('\n');
  const blobs = (name: string) => knownHostsEntries(text, name).keys.map((k) => k.blob.toString());

  it('matches [host]:port off port 22 and the bare host on it, in comma lists', () => {
    expect(blobs('[127.0.0.1]:2222')).toEqual(['key-1']);
    expect(blobs('127.0.0.1')).toEqual(['key-2']);
    expect(blobs('other.example')).toEqual(['key-1']);
    expect(knownHostsEntries(text, '[127.0.0.1]:2222').revoked.map((k) => k.blob.toString())).toEqual(['key-5']);
  });

  it('understands wildcards, negation and hashed names, and ignores CA lines', () => {
    expect(blobs('data.example.org')).toEqual(['key-3']);
    expect(blobs('bad.example.org')).toEqual([]);
    expect(blobs('[10.0.0.1]:2200')).toEqual(['key-4']);
    expect(blobs('10.0.0.1')).toEqual([]);
    expect(blobs('anything.else')).toEqual([]);
  });
});

const hasSshd = requireTool('sshd', 'openssh-server') && requireTool('ssh-keygen', 'openssh-client') && requireTool('ssh-agent', 'openssh-client');

describe.skipIf(!hasSshd)('sftp against OpenSSH sshd', () => {
  let tmp: DirectoryResult;
  let sshd: SshdServer;
  let srv: string; // what the server serves (sshd runs as us, so a local directory)
  let work: string;
  let emptyHome: string;
  const urlOf = (file: string) => `sftp://${sshd.user}@${sshd.host}:${sshd.port}${pathToFileURL(file).pathname}`;
  // No ~/.ssh/known_hosts and no agent: each test says exactly what it trusts and logs in with.
  const env = () => ({ HOME: emptyHome, SSH_AUTH_SOCK: '' });

  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    srv = join(tmp.path, 'srv');
    work = join(tmp.path, 'work');
    emptyHome = join(tmp.path, 'home');
    await Promise.all([srv, work, emptyHome].map((d) => mkdir(d, { recursive: true })));
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
    await tmp?.cleanup();
  });

  describe('readRanges', () => {
    const size = (40 << 20) + 12_345;
    let data: Uint8Array;
    let file: string;
    beforeAll(async () => {
      data = seededBytes(size, 42);
      file = join(srv, 'forty.bin');
      await writeFile(file, data);
    });

    async function collect(ranges: ByteRange[], slowConsumer = false) {
      const source = await createSftpSource(urlOf(file), { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath });
      try {
        return await readAll(source, ranges, slowConsumer);
      } finally {
        await source.close();
      }
    }

    async function readAll(source: Awaited<ReturnType<typeof createSftpSource>>, ranges: ByteRange[], slowConsumer: boolean) {
      const got = ranges.map((r) => ({ r, next: r.start, bytes: new Uint8Array(r.end - r.start) }));
      let progress = 0;
      const onChunk = async (c: RangeChunk) => {
        const slot = got.find((g) => c.offset >= g.r.start && c.offset < g.r.end);
        expect(slot, `chunk at ${c.offset} belongs to no range`).toBeDefined();
        // Each byte once, pieces of a range in ascending order: every chunk starts where the last ended.
        expect(c.offset).toBe(slot!.next);
        expect(c.offset + c.data.length).toBeLessThanOrEqual(slot!.r.end);
        slot!.bytes.set(c.data, c.offset - slot!.r.start);
        slot!.next += c.data.length;
        if (slowConsumer) await new Promise((r) => setTimeout(r, 1));
      };
      const stats = await source.readRanges(ranges, onChunk, { onProgress: (n) => { progress = n; } });
      const total = ranges.reduce((n, r) => n + r.end - r.start, 0);
      for (const g of got) {
        expect(g.next).toBe(g.r.end);
        expect(Buffer.from(g.bytes).equals(Buffer.from(data.subarray(g.r.start, g.r.end))), `bytes of [${g.r.start}, ${g.r.end})`).toBe(true);
      }
      expect(progress).toBe(total);
      expect(stats.bytesReceived).toBe(total);
      return stats;
    }

    it('delivers exact bytes for scattered ranges, a long one and one ending at EOF', async () => {
      const ranges: ByteRange[] = [
        { start: 0, end: 1 },
        { start: 100, end: 4196 },
        { start: 1 << 20, end: (1 << 20) + 65536 },
        { start: 3_000_001, end: 3_000_001 + 19 * 255 * 1024 + 4321 }, // many reads, ends mid-read
        { start: 30 << 20, end: (30 << 20) + 255 * 1024 }, // exactly one full read
        { start: size - 70_001, end: size },
      ];
      const stats = await collect(ranges);
      // At least one read per 255 KiB, and no read wasted: nothing but short reads could add more.
      const minimum = ranges.reduce((n, r) => n + Math.ceil((r.end - r.start) / (255 * 1024)), 0);
      expect(stats.requests).toBeGreaterThanOrEqual(minimum);
      expect(stats.requests).toBeLessThan(minimum * 2);
    });

    it('reads the whole file in order with a slow asynchronous consumer', async () => {
      await collect([{ start: 0, end: size }], true);
    });

    it('reuses one connection across calls, and fails with E_IO when the file is shorter than asked', async () => {
      const source = await createSftpSource(urlOf(file), { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath });
      try {
        await readAll(source, [{ start: 5, end: 500_000 }], false);
        await readAll(source, [{ start: size - 10, end: size }], false);
        const past = source.readRanges([{ start: size - 10, end: size + 1000 }], () => undefined);
        await expect(past).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining(`ends at ${size}`) });
        await readAll(source, [{ start: 7, end: 8 }], false);
      } finally {
        await source.close();
      }
    });

    it('stops when aborted and passes a consumer failure through unchanged', async () => {
      const source = await createSftpSource(urlOf(file), { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath });
      try {
        const controller = new AbortController();
        let chunks = 0;
        const aborted = source.readRanges([{ start: 0, end: size }], () => { if (++chunks === 3) controller.abort(new Error('enough')); }, { signal: controller.signal });
        await expect(aborted).rejects.toThrow('enough');
        expect(chunks).toBeLessThan(5);
        const failing = source.readRanges([{ start: 0, end: size }], () => { throw new ZpumpError('E_VERIFY', 'bad block'); });
        await expect(failing).rejects.toMatchObject({ code: 'E_VERIFY' });
      } finally {
        await source.close();
      }
    });

    it('reconnects and resumes where delivery stopped when the connection dies mid-transfer', async () => {
      const source = await createSftpSource(urlOf(file), { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath });
      let chunks = 0;
      let killed = 0;
      const got = new Uint8Array(size);
      let next = 0;
      try {
        const stats = await source.readRanges([{ start: 0, end: size }], (c) => {
          expect(c.offset).toBe(next);
          got.set(c.data, c.offset);
          next += c.data.length;
          if (++chunks !== 20) return;
          // sshd serves each connection from a child of the listening daemon (pid file beside the keys).
          const daemon = readFileSync(join(dirname(sshd.privateKeyPath), 'sshd.pid'), 'utf8').trim();
          for (const child of readFileSync(`/proc/${daemon}/task/${daemon}/children`, 'utf8').split(/\s+/).filter(Boolean)) {
            process.kill(Number(child), 'SIGKILL');
            killed++;
          }
        });
        expect(killed).toBeGreaterThan(0);
        expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
        expect(stats.bytesReceived).toBeGreaterThanOrEqual(size);
        expect(stats.requests).toBeGreaterThan(Math.ceil(size / (255 * 1024))); // the reads lost in flight were sent again
      } finally {
        await source.close();
      }
    });

    it('reports a missing remote file as E_IO and a refused key as E_NETWORK', async () => {
      const missing = await createSftpSource(urlOf(join(srv, 'nope.bin')), { privateKeyPath: sshd.privateKeyPath, knownHostsPath: sshd.knownHostsPath });
      await expect(missing.readRanges([{ start: 0, end: 1 }], () => undefined)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('no such file') });
      await missing.close();

      const stranger = join(work, 'stranger_key');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const refused = await createSftpSource(urlOf(file), { privateKeyPath: stranger, knownHostsPath: sshd.knownHostsPath });
      await expect(refused.readRanges([{ start: 0, end: 1 }], () => undefined)).rejects.toMatchObject({ code: 'E_NETWORK', message: expect.stringContaining(`refused ${sshd.user}`) });
      await refused.close();
    });

    it('asks for credentials when there is neither a key nor an agent', async () => {
      const saved = process.env.SSH_AUTH_SOCK;
      delete process.env.SSH_AUTH_SOCK;
      try {
        await expect(createSftpSource(urlOf(file), { knownHostsPath: sshd.knownHostsPath })).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('--ssh-key') });
      } finally {
        if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
      }
    });
  });

  describe('zpump sync from sftp://', () => {
    const size = 48 << 20;
    let old: Uint8Array;
    let next: Uint8Array;
    let control: string;
    let dataFile: string;

    beforeAll(async () => {
      old = seededBytes(size, 7);
      next = scatteredEdits(old, 40, 8); // 40 × 4 KiB rewritten: ~0.3 % of the file
      dataFile = join(srv, 'big.bin');
      await writeFile(dataFile, next);
      control = join(work, 'big.bin.zsync');
      const made = await runCli(['make', '--engine', 'js', '-u', urlOf(dataFile), '-o', control, dataFile]);
      expect(made.exitCode, made.stderr).toBe(0);
    });

    const freshTarget = async (name: string) => {
      const target = join(work, name);
      await writeFile(target, old);
      return target;
    };

    for (const engine of ['js', 'auto']) {
      it(`--engine ${engine}: fetches a small fraction over sftp and ends byte-identical`, async () => {
        const target = await freshTarget(`target-${engine}.bin`);
        const res = await runCli(['sync', '--json', '--engine', engine, '--ssh-key', sshd.privateKeyPath, '--known-hosts', sshd.knownHostsPath, control, target], { env: env() });
        expect(res.exitCode, res.stderr).toBe(0);
        const result = JSON.parse(res.stdout);
        expect(result.engine).toBe('js');
        expect(result.fallback).toBeUndefined();
        expect(result.verified).toBe(true);
        expect(result.dataUrl).toBe(urlOf(dataFile));
        expect(result.bytesFetched).toBeGreaterThan(0);
        expect(result.bytesFetched).toBeLessThan(size * 0.05);
        expect(result.requests).toBeGreaterThan(0);
        expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
      });
    }

    it('--host-fingerprint with the right value is enough without any known_hosts', async () => {
      const target = await freshTarget('target-pinned.bin');
      const res = await runCli(['sync', '--json', '--engine', 'js', '--ssh-key', sshd.privateKeyPath, '--host-fingerprint', sshd.hostKeyFingerprint, control, target], { env: env() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
    });

    it('accepts a hashed known_hosts (ssh-keygen -H) and a -u URL that overrides the header', async () => {
      const hashedFile = join(work, 'known_hosts_hashed');
      await writeFile(hashedFile, await readFile(sshd.knownHostsPath));
      await run('ssh-keygen', ['-q', '-H', '-f', hashedFile]);
      expect(await readFile(hashedFile, 'utf8')).toMatch(/^\|1\|/);
      const target = await freshTarget('target-hashed.bin');
      const res = await runCli(['sync', '--json', '--engine', 'js', '--ssh-key', sshd.privateKeyPath, '--known-hosts', hashedFile, '-u', urlOf(dataFile), control, target], { env: env() });
      expect(res.exitCode, res.stderr).toBe(0);
      expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
    });

    describe('refuses a host key nobody vouched for, leaving the target untouched', () => {
      const refusals: [string, () => Promise<string[]>, RegExp][] = [
        ['known_hosts has a different key for the host', async () => {
          const other = join(work, 'other_host_key');
          await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
          const pub = (await readFile(`${other}.pub`, 'utf8')).trim().split(/\s+/);
          const file = join(work, 'known_hosts_wrong');
          await writeFile(file, `[${sshd.host}]:${sshd.port} ${pub[0]} ${pub[1]}\n`);
          return ['--known-hosts', file];
        }, /differs from the key recorded/],
        ['known_hosts does not know the host', async () => {
          const file = join(work, 'known_hosts_other_port');
          // The right key, but for port 22: a different host as far as ssh is concerned.
          const line = (await readFile(sshd.knownHostsPath, 'utf8')).replace(/^\[[^\]]+\]:\d+/, sshd.host);
          await writeFile(file, line);
          return ['--known-hosts', file];
        }, /is not recorded for \[127\.0\.0\.1\]:\d+/],
        ['--host-fingerprint does not match', async () => ['--host-fingerprint', fingerprintOf(Buffer.from('some other key'))], /does not match --host-fingerprint/],
      ];
      for (const [name, args, reason] of refusals) {
        it(name, async () => {
          const target = await freshTarget('target-refused.bin');
          const before = await stat(target);
          const res = await runCli(['sync', '--engine', 'js', '--ssh-key', sshd.privateKeyPath, ...(await args()), control, target], { env: env() });
          expect(res.exitCode, res.stderr).toBe(1);
          expect(res.stderr).toContain(sshd.hostKeyFingerprint);
          expect(res.stderr).toMatch(reason);
          expect(res.stderr).toContain('--host-fingerprint');
          expect(res.stderr).toContain('--known-hosts');
          const after = await stat(target);
          expect(after.mtimeMs).toBe(before.mtimeMs);
          expect(after.ino).toBe(before.ino);
          expect(Buffer.from(await readFile(target)).equals(Buffer.from(old))).toBe(true);
        });
      }
    });

    it('logs in with the SSH agent when no --ssh-key is given', async () => {
      const sock = join(tmp.path, 'agent.sock');
      const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      try {
        for (let i = 0; i < 100; i++) {
          if (await stat(sock).then(() => true, () => false)) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await run('ssh-add', ['-q', sshd.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
        const target = await freshTarget('target-agent.bin');
        const res = await runCli(['sync', '--json', '--engine', 'js', '--known-hosts', sshd.knownHostsPath, control, target], { env: { ...env(), SSH_AUTH_SOCK: sock } });
        expect(res.exitCode, res.stderr).toBe(0);
        expect(Buffer.from(await readFile(target)).equals(Buffer.from(next))).toBe(true);
      } finally {
        agent.kill();
      }
    });

    it('rejects a malformed --host-fingerprint before doing any work (exit 2)', async () => {
      const target = await freshTarget('target-badfp.bin');
      const res = await runCli(['sync', '--engine', 'js', '--ssh-key', sshd.privateKeyPath, '--host-fingerprint', 'ab:cd:ef', control, target], { env: env() });
      expect(res.exitCode).toBe(2);
      expect(res.stderr).toMatch(/SHA256:/);
    });

    it('announce + subscribe: an sftp base URL is synced block by block, the host key checked', async () => {
      const mirror = join(work, 'mirror');
      await mkdir(mirror, { recursive: true });
      await writeFile(join(mirror, 'big.bin'), old);
      await utimes(join(mirror, 'big.bin'), new Date('2020-01-01'), new Date('2020-01-01'));
      const base = `sftp://${sshd.user}@${sshd.host}:${sshd.port}${pathToFileURL(srv).pathname}/`;
      const message = await runCli(['announce', '--base-url', base, '--root', srv, dataFile]);
      expect(message.exitCode, message.stderr).toBe(0);
      const args = ['subscribe', '-', '--dir', mirror, '--once', '--json', '--retries', '0', '--ssh-key', sshd.privateKeyPath];
      const refused = await runCli([...args, '--host-fingerprint', 'SHA256:' + 'A'.repeat(43)], { env: env(), input: message.stdout });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(sshd.hostKeyFingerprint);
      expect(Buffer.from(await readFile(join(mirror, 'big.bin'))).equals(Buffer.from(old))).toBe(true);
      const res = await runCli([...args, '--known-hosts', sshd.knownHostsPath], { env: env(), input: message.stdout });
      expect(res.exitCode, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout) as { action: string; engine: string; bytesFetched: number };
      expect(report).toMatchObject({ action: 'delta', engine: 'js' });
      expect(report.bytesFetched).toBeLessThan(size * 0.05);
      expect(Buffer.from(await readFile(join(mirror, 'big.bin'))).equals(Buffer.from(next))).toBe(true);
    });

    it('--engine zsync refuses sftp:// (zsync 0.6.2 fetches plain http only)', async () => {
      const target = await freshTarget('target-zsync.bin');
      const res = await runCli(['sync', '--engine', 'zsync', '--ssh-key', sshd.privateKeyPath, '--known-hosts', sshd.knownHostsPath, control, target], { env: env() });
      expect(res.exitCode).not.toBe(0);
      expect(res.stderr).toMatch(/zsync/);
      expect(Buffer.from(await readFile(target)).equals(Buffer.from(old))).toBe(true);
    });
  });
});
