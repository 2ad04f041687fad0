// Hostile and broken messages on a spool, between two good ones: each is refused with a reason
// (moved to rejected/), nothing lands outside --dir, an existing file is never damaged, and the
// subscriber goes on to apply the good message after them.

import { execa } from 'execa';
import { mkdir, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { buildFileMessage } from '../../src/pump/message.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startFaultServer, type FaultServer } from '../helpers/fault-server.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const hasNginx = requireTool('nginx', 'nginx-light');

describe.skipIf(!hasNginx)('subscribe refuses hostile and broken messages', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  let pub: string;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    pub = join(tmp.path, 'pub');
    await mkdir(join(pub, 'd'), { recursive: true });
    nginx = await startNginx({ root: pub });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  it('sets each one aside with its reason and keeps going', async () => {
    const base = nginx.url;
    const mirror = join(tmp.path, 'mirror');
    const outside = join(tmp.path, 'outside');
    const spool = join(tmp.path, 'spool');
    await mkdir(mirror);
    await mkdir(outside);
    await mkdir(spool);
    await symlink(outside, join(mirror, 'link'));

    const big = seededBytes(3 << 20, 1);
    await writeFile(join(pub, 'd', 'big.bin'), big);
    await writeFile(join(pub, 'small.txt'), 'hello\n');
    const good = (await buildFileMessage({ path: join(pub, 'd', 'big.bin'), root: pub, baseUrl: base })).message;
    const small = (await buildFileMessage({ path: join(pub, 'small.txt'), root: pub, baseUrl: base })).message;
    expect(good.zsync?.kind).toBe('inline');

    // A local copy that a lying message must not damage.
    const precious = seededBytes(3 << 20, 2);
    await mkdir(join(mirror, 'd'));
    await writeFile(join(mirror, 'd', 'big.bin'), precious);
    await utimes(join(mirror, 'd', 'big.bin'), new Date('2020-01-01'), new Date('2020-01-01')); // an older version
    // The lie: the signature and identity describe other data than what the server has.
    const other = join(tmp.path, 'other.bin');
    await writeFile(other, seededBytes(3 << 20, 3));
    const lieMade = (await buildFileMessage({ path: other, root: tmp.path, baseUrl: base })).message;
    const lie: Announcement = { ...lieMade, relPath: 'd/big.bin' };

    const json = (a: Announcement, patch: Record<string, unknown> = {}) => JSON.stringify({ ...JSON.parse(renderAnnouncement(a)), ...patch });
    const hostile: Record<string, string> = {
      'invalid-json': '{"pubTime": "20261124T000000", "relPath": ',
      'missing-identity': JSON.stringify({ pubTime: '20261124T000000', baseUrl: base, relPath: 'x.txt', size: 3 }),
      'mistyped-size': json(small, { size: 'three' }),
      'absolute-relpath': json(small, { relPath: '/etc/evil.txt' }),
      'dotdot-relpath': json(small, { relPath: 'd/../../escape.txt' }),
      'symlink-relpath': json(small, { relPath: 'link/evil.txt' }),
      'length-disagrees': json(good, { size: good.size + 1 }),
      'file-scheme': json(small, { baseUrl: `file://${pub}/` }),
      'ftp-scheme': json(small, { baseUrl: 'ftp://127.0.0.1/' }),
      'over-limit': json(small, { padding: 'x'.repeat(20_000) }),
      'lying-signature': json(lie),
    };
    const names = Object.keys(hostile);
    for (const [i, name] of names.entries()) await writeFile(join(spool, `2026-${String(i + 1).padStart(2, '0')}-${name}.json`), hostile[name]!);
    await writeFile(join(spool, '2026-99-good.json'), json(small));

    const run = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--retries', '0', '--message-limit', '16k']);
    expect(run.exitCode, run.stderr).toBe(1); // some were set aside
    // The good message after all the bad ones was applied.
    expect(await readFile(join(mirror, 'small.txt'), 'utf8')).toBe('hello\n');
    // Every bad one is in rejected/ with a reason that names the problem.
    const rejected = await readdir(join(spool, 'rejected'));
    const reasons: Record<string, string> = {};
    for (const name of names) {
      const file = rejected.find((n) => n.endsWith(`${name}.json`));
      expect(file, `${name} set aside`).toBeDefined();
      reasons[name] = await readFile(join(spool, 'rejected', `${file}.reason.txt`), 'utf8');
    }
    expect(reasons['invalid-json']).toMatch(/not valid JSON/);
    expect(reasons['missing-identity']).toMatch(/identity/);
    expect(reasons['mistyped-size']).toMatch(/size/);
    expect(reasons['absolute-relpath']).toMatch(/absolute/);
    expect(reasons['dotdot-relpath']).toMatch(/\.\./);
    expect(reasons['symlink-relpath']).toMatch(/symbolic link/);
    expect(reasons['length-disagrees']).toMatch(/describes \d+ bytes but size says/);
    expect(reasons['file-scheme']).toMatch(/file: scheme is not allowed.*--allow-file/);
    expect(reasons['ftp-scheme']).toMatch(/ftp: scheme is not allowed/);
    expect(reasons['over-limit']).toMatch(/over the \d+-byte (message )?limit/);
    expect(reasons['lying-signature']).toMatch(/sha512|SHA-1/);
    // Each refusal was logged, and the spool holds nothing else.
    for (const name of names) expect(run.stderr).toContain(name);
    expect((await readdir(spool)).filter((n) => n.endsWith('.json'))).toEqual([]);
    // Nothing was written outside --dir, and the local copy survived the lie.
    expect(await readdir(outside)).toEqual([]);
    // (other.bin.zsync: the fine signature two-level announcements leave beside the file they describe)
    expect((await readdir(tmp.path)).filter((n) => !n.endsWith('.zsync')).sort()).toEqual(['mirror', 'other.bin', 'outside', 'pub', 'spool']);
    expect(Buffer.compare(await readFile(join(mirror, 'd', 'big.bin')), Buffer.from(precious))).toBe(0);
    expect((await readdir(join(mirror, 'd'))).sort()).toEqual(['big.bin']); // no temporaries or locks left
    // The honest message for the same file then works: delta sync from the precious copy.
    await writeFile(join(spool, '2026-100-good.json'), json(good));
    const again = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout.trim()) as { action: string; relPath: string };
    expect(report).toMatchObject({ relPath: 'd/big.bin', action: 'delta' });
    expect(Buffer.compare(await readFile(join(mirror, 'd', 'big.bin')), Buffer.from(big))).toBe(0);
  });
});

describe.skipIf(!hasNginx)('subscribe: every URL and name in a message is checked before use', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  let pub: string;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    pub = join(tmp.path, 'pub');
    await mkdir(join(pub, 'sub', 'dir'), { recursive: true });
    nginx = await startNginx({ root: pub });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  it('refuses signatures outside baseUrl, zpump-owned names and unverifiable files, and leaks no file content', async () => {
    const mirror = join(tmp.path, 'mirror');
    const spool = join(tmp.path, 'spool');
    await mkdir(mirror);
    await mkdir(spool);
    await writeFile(join(pub, 'small.txt'), 'hello\n');
    await writeFile(join(pub, 'sub', 'dir', 'x.zsync'), 'not used');
    const small = (await buildFileMessage({ path: join(pub, 'small.txt'), root: pub, baseUrl: nginx.url })).message;
    const json = (patch: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(renderAnnouncement(small)), ...patch });
    const hostile: Record<string, string> = {
      'retrieve-passwd': json({ zsync: { retrievePath: 'file:///etc/passwd', size: 4096 } }),
      'retrieve-dotdot': json({ baseUrl: `${nginx.url}sub/dir/`, zsync: { retrievePath: '%2e%2e/%2e%2e/small.txt', size: 6 } }),
      'data-dotdot': json({ baseUrl: `${nginx.url}sub/dir/`, retrievePath: 'http://127.0.0.1/sub/dir/%2e%2e/%2e%2e/small.txt' }),
      'own-lock': json({ relPath: '.keep.txt.zpump-lock' }),
      'own-rejected': json({ relPath: '.zpump/rejected/x' }),
      'own-temp': json({ relPath: 'a.zpump-tmp' }),
      'identity-none': json({ relPath: 'none.txt', identity: { method: 'none', value: '' } }),
      'newline-relpath': json({ relPath: 'n.txt\nrefused 2026-00-fake.json: forged' }),
    };
    const names = Object.keys(hostile);
    for (const [i, name] of names.entries()) await writeFile(join(spool, `2026-${String(i + 1).padStart(2, '0')}-${name}.json`), hostile[name]!);
    const run = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--retries', '0']);
    expect(run.exitCode, run.stderr).toBe(1);
    const reasons: Record<string, string> = {};
    const rejected = await readdir(join(spool, 'rejected'));
    for (const name of names) {
      const file = rejected.find((n) => n.endsWith(`${name}.json`));
      expect(file, `${name} set aside`).toBeDefined();
      reasons[name] = await readFile(join(spool, 'rejected', `${file}.reason.txt`), 'utf8');
    }
    expect(reasons['retrieve-passwd']).toMatch(/zsync.retrievePath .*file: scheme is not allowed/);
    expect(reasons['retrieve-dotdot']).toMatch(/hides a parent folder/);
    expect(reasons['data-dotdot']).toMatch(/not under baseUrl/);
    for (const own of ['own-lock', 'own-rejected', 'own-temp']) expect(reasons[own]).toMatch(/zpump's own files/);
    expect(reasons['identity-none']).toMatch(/--accept-unverified/);
    expect(run.stderr).not.toContain('root:');
    // One line per event: the newline in relPath is shown escaped, it cannot forge a line.
    expect(run.stderr).toContain('n.txt\\nrefused 2026-00-fake.json');
    expect(run.stderr.split('\n').some((l) => l.startsWith('refused 2026-00-fake.json'))).toBe(false);
    expect((await readdir(mirror)).filter((n) => n !== '.zpump')).toEqual([]);
    // file: with --allow-file: still only under baseUrl, and never a device read without end.
    const fileHostile: Record<string, string> = {
      'passwd-outside-base': json({ baseUrl: `file://${pub}/`, zsync: { retrievePath: 'file:///etc/passwd', size: 4096 } }),
      'dev-zero': json({ baseUrl: 'file:///dev/', relPath: 'zero.txt', zsync: { retrievePath: 'zero' } }),
      'dev-zero-sized': json({ baseUrl: 'file:///dev/', relPath: 'zero2.txt', zsync: { retrievePath: 'zero', size: 1000 } }),
      'data-fifo': json({ baseUrl: `file://${pub}/`, relPath: 'fifo', size: 10, zsync: undefined }),
    };
    await execa('mkfifo', [join(pub, 'fifo')]);
    for (const [i, name] of Object.keys(fileHostile).entries()) await writeFile(join(spool, `2027-${String(i + 1).padStart(2, '0')}-${name}.json`), fileHostile[name]!);
    const again = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--retries', '0', '--allow-file']);
    expect(again.exitCode, again.stderr).toBe(1);
    const after = await readdir(join(spool, 'rejected'));
    const reason = async (name: string) => readFile(join(spool, 'rejected', `${after.find((n) => n.endsWith(`${name}.json`))}.reason.txt`), 'utf8');
    expect(await reason('passwd-outside-base')).toMatch(/not under baseUrl/);
    expect(await reason('dev-zero')).toMatch(/not a regular file/);
    expect(await reason('dev-zero-sized')).toMatch(/not a regular file/);
    expect(await reason('data-fifo')).toMatch(/not a regular file/);
    expect(again.stderr).not.toContain('root:');
  });

  it('sync on an announcement applies the same URL policy and caps a referenced signature before reading it', async () => {
    await writeFile(join(pub, 'small.txt'), 'hello\n');
    const small = (await buildFileMessage({ path: join(pub, 'small.txt'), root: pub, baseUrl: nginx.url })).message;
    const passwd = join(tmp.path, 'passwd.json');
    await writeFile(passwd, JSON.stringify({ ...JSON.parse(renderAnnouncement(small)), zsync: { retrievePath: 'file:///etc/passwd', size: 4096 } }));
    const run = await runCli(['sync', passwd, join(tmp.path, 'out1.txt')]);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/not under baseUrl/);
    expect(run.stderr).not.toContain('root:');
    // An sftp signature of 1 TiB: refused before any buffer is made or any server contacted.
    const huge = join(tmp.path, 'huge.json');
    await writeFile(huge, JSON.stringify({ ...JSON.parse(renderAnnouncement(small)), baseUrl: 'sftp://nobody@127.0.0.1:1/pub/', zsync: { retrievePath: 'small.txt.zsync', size: 2 ** 40 } }));
    const capped = await runCli(['sync', huge, join(tmp.path, 'out2.txt')]);
    expect(capped.exitCode, capped.stderr).toBe(2);
    expect(capped.stderr).toMatch(/zsync.size is 1099511627776 bytes, more than/);
    // identity none: only with --accept-unverified.
    const none = join(tmp.path, 'none.json');
    await writeFile(none, JSON.stringify({ ...JSON.parse(renderAnnouncement(small)), identity: { method: 'none', value: '' } }));
    const refused = await runCli(['sync', none, join(tmp.path, 'out3.txt')]);
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/--accept-unverified/);
    const accepted = await runCli(['sync', none, join(tmp.path, 'out3.txt'), '--accept-unverified']);
    expect(accepted.exitCode, accepted.stderr).toBe(0);
    expect(await readFile(join(tmp.path, 'out3.txt'), 'utf8')).toBe('hello\n');
  });
});

describe('subscribe under faults: a folder swapped for a link, SIGTERM while waiting', () => {
  let tmp: DirectoryResult;
  let server: FaultServer;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
  });
  beforeEach(async () => {
    server = await startFaultServer();
  });
  afterEach(async () => {
    await server.stop();
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  /** A spool holding one message for relPath, served by the fault server (503 for now). */
  const setup = async (name: string, relPath: string, content: string) => {
    const root = join(tmp.path, name);
    const pub = join(root, 'pub');
    const spool = join(root, 'spool');
    const tree = join(root, 'TREE');
    await mkdir(join(pub, dirname(relPath)), { recursive: true });
    await mkdir(spool);
    await mkdir(join(tree, dirname(relPath)), { recursive: true });
    await writeFile(join(pub, relPath), content);
    server.files.set(`/${relPath}`, new TextEncoder().encode(content));
    const message = (await buildFileMessage({ path: join(pub, relPath), root: pub, baseUrl: server.url })).message;
    await writeFile(join(spool, '2026-01-msg.json'), renderAnnouncement(message));
    return { root, spool, tree };
  };
  const start = (spool: string, tree: string, extra: string[]) => {
    const child = execa(process.execPath, [CLI, 'subscribe', `spool:${spool}`, '--dir', tree, '--once', '--engine', 'js', ...extra], { reject: false, all: true });
    let output = '';
    child.all?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const seen = async (pattern: RegExp) => {
      while (!pattern.test(output)) {
        if (child.exitCode !== null) throw new Error(`subscribe exited early: ${output}`);
        await sleep(25);
      }
    };
    return { child, seen, output: () => output };
  };
  /** Resolves with the exit, or with 'still running' if the process is still there after `ms`. */
  const exitWithin = async (child: ReturnType<typeof execa>, ms: number) => {
    const timer = sleep(ms).then(() => 'still running' as const);
    const result = await Promise.race([child.then(() => 'exited' as const), timer]);
    if (result !== 'exited') child.kill('SIGKILL');
    return result;
  };

  it('never writes through a folder swapped for a symbolic link between two attempts', async () => {
    const { root, spool, tree } = await setup('swap', 'd/a.txt', 'payload\n');
    const outside = join(root, 'OUTSIDE');
    await mkdir(outside);
    const run = start(spool, tree, ['--retries', '2', '--retry-delay', '1']);
    await run.seen(/attempt 1 failed/);
    // While the subscriber waits to retry: TREE/d becomes a link to ../OUTSIDE, and the server answers.
    await rm(join(tree, 'd'), { recursive: true });
    await symlink('../OUTSIDE', join(tree, 'd'));
    server.failing = false;
    const done = await run.child;
    expect(done.exitCode, run.output()).toBe(1);
    expect(run.output()).toMatch(/symbolic link/);
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(join(spool, 'rejected'))).some((n) => n.endsWith('msg.json'))).toBe(true);
  });

  it('ends within 5 s on SIGTERM during a retry backoff, leaving the message queued', async () => {
    const { spool, tree } = await setup('backoff', 'b.txt', 'payload\n');
    const run = start(spool, tree, ['--retries', '5', '--retry-delay', '600']);
    await run.seen(/attempt 1 failed/);
    run.child.kill('SIGTERM');
    expect(await exitWithin(run.child, 5000), run.output()).toBe('exited');
    expect(await readdir(spool)).toContain('2026-01-msg.json');
    await expect(stat(join(tree, 'b.txt'))).rejects.toThrow();
  });

  it('ends within 5 s on SIGTERM in the middle of a stalled transfer', async () => {
    const { spool, tree } = await setup('stall', 's.txt', 'x'.repeat(100_000));
    server.failing = false;
    server.stalling = true;
    const run = start(spool, tree, ['--stall-timeout', '600']);
    await run.seen(/ready/);
    while ((server.requests.get('/s.txt') ?? 0) === 0) await sleep(25);
    await sleep(300);
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGTERM');
    expect(await exitWithin(run.child, 5000), run.output()).toBe('exited');
    expect(await readdir(spool)).toContain('2026-01-msg.json');
    await expect(stat(join(tree, 's.txt'))).rejects.toThrow();
  });

  it('ends within 5 s on SIGTERM while waiting for a lock held by a live writer', async () => {
    const { spool, tree } = await setup('lock', 'k.txt', 'payload\n');
    server.failing = false;
    // A live process on this host (this test) holds the file's lock: the subscriber waits for it.
    await writeFile(join(tree, '.k.txt.zpump-lock'), `${hostname()} ${process.pid} now\n`);
    const run = start(spool, tree, []);
    await run.seen(/ready/);
    await sleep(500);
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGTERM');
    expect(await exitWithin(run.child, 5000), run.output()).toBe('exited');
    expect(await readdir(spool)).toContain('2026-01-msg.json');
    await expect(stat(join(tree, 'k.txt'))).rejects.toThrow();
  });
});
