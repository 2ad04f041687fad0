// Two-level sync, what it fetches and how it fails: only the fine records and blocks a small edit
// needs (nginx's log); a fine signature that is missing, truncated, republished or lying falls
// back and still ends with the right file (or none, never a wrong one); subscribe, file: and sftp.

import { mkdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { make } from '../../src/api.js';
import { parseControlFileHeader } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { startNginx } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';
import { COARSE, FINE, OLD, concat, flipped, same, scattered, twoLevelEnv, type Published } from '../helpers/two-level.js';

const hasNginx = requireTool('nginx', 'nginx-light');
const hasSshd = requireTool('sshd', 'openssh-server');

describe.skipIf(!hasNginx)('two-level sync: bytes and fallbacks', () => {
  const env = twoLevelEnv({ sshd: hasSshd });

  it('fetches only the fine records and fine blocks a one-block edit needs (nginx log)', async () => {
    const next = flipped(OLD, 5 * COARSE + 7 * FINE + 100, 10); // inside one fine block
    const pub = await env.publish('one.bin', next);
    const target = join(env.work, 'one.bin');
    await writeFile(target, OLD);
    await env.nginx.clearLog();
    const result = await env.syncJson(pub.message, target);
    expect(same(await readFile(target), next)).toBe(true);
    const log = await env.nginx.readLog();
    const fineBytes = log.filter((e) => e.path === '/one.bin.zsync').reduce((n, e) => n + e.bodyBytesSent, 0);
    const dataBytes = log.filter((e) => e.path === '/one.bin').reduce((n, e) => n + e.bodyBytesSent, 0);
    const { control, headerLength } = parseControlFileHeader(pub.fine)!;
    const recLen = control.hashLengths.rsumBytes + control.hashLengths.checksumBytes;
    // The header piece, then one coarse block's records (and the next one's first): nowhere near the whole fine file.
    expect(fineBytes).toBeLessThanOrEqual(Math.min(4096, pub.fine.length) + (COARSE / FINE + 1) * recLen + 400);
    expect(fineBytes).toBeLessThan(pub.fine.length / 2);
    expect(headerLength).toBeLessThan(4096);
    // One fine block of data (plus HTTP part headers), not the 256 KiB coarse block.
    expect(dataBytes).toBeGreaterThanOrEqual(FINE);
    expect(dataBytes).toBeLessThan(FINE + 400);
    expect(result).toMatchObject({ signatureBytes: fineBytes, twoLevel: { level: 'fine', fineBlockSize: FINE, coarseBlockSize: COARSE } });
    expect(result.bytesFetched).toBe(fineBytes + dataBytes);
  });

  describe('a fine signature that cannot be used falls back and still ends with the right file', () => {
    const next = scattered(OLD, 0.002, 13);
    const cases: Array<[string, (pub: Published) => Promise<void>, string]> = [
      ['missing (404)', async (pub) => rm(pub.finePath), 'coarse'],
      ['truncated (the records it needs are gone)', async (pub) => truncate(pub.finePath, parseControlFileHeader(pub.fine)!.headerLength + 100), 'coarse'],
      ['cut inside its header', async (pub) => truncate(pub.finePath, 50), 'coarse'],
      ['replaced by a newer one between message and fetch', async (pub) => {
        const newer = join(env.tmp.path, 'newer.bin');
        await writeFile(newer, flipped(next, 12345));
        await make({ input: newer, output: pub.finePath, blockSize: FINE, engine: 'js', force: true });
      }, 'coarse'],
      ['lying records (every strong hash changed)', async (pub) => {
        const { control, headerLength } = parseControlFileHeader(pub.fine)!;
        const recLen = control.hashLengths.rsumBytes + control.hashLengths.checksumBytes;
        const lie = new Uint8Array(pub.fine);
        for (let o = headerLength + control.hashLengths.rsumBytes; o < lie.length; o += recLen) lie[o] = lie[o]! ^ 0xff;
        await writeFile(pub.finePath, lie);
      }, 'coarse'],
      ['lying records that match other local blocks (the final check catches them)', async (pub) => {
        // Records of the old file under the new file's header: old blocks pass the fine checks, the whole file does not.
        const oldFile = join(env.tmp.path, 'old-for-lie.bin');
        await writeFile(oldFile, OLD);
        const oldFine = join(env.tmp.path, 'old-for-lie.zsync');
        await make({ input: oldFile, output: oldFine, blockSize: FINE, engine: 'js', force: true });
        const oldBytes = await readFile(oldFine);
        const o = parseControlFileHeader(oldBytes)!;
        const n = parseControlFileHeader(pub.fine)!;
        await writeFile(pub.finePath, concat(pub.fine.subarray(0, n.headerLength), oldBytes.subarray(o.headerLength)));
      }, 'coarse'],
    ];
    it.each(cases.map(([n], i) => [n, i] as const))('%s', async (name, i) => {
      const pub = await env.publish(`f${i}.bin`, next);
      await cases[i]![1](pub);
      const target = join(env.work, `f${i}.bin`);
      await writeFile(target, OLD);
      const result = await env.syncJson(pub.message, target);
      expect(same(await readFile(target), next), name).toBe(true);
      expect(result.twoLevel.level).toBe(cases[i]![2]);
      expect(result.twoLevel.problems.length).toBeGreaterThan(0);
      await env.noTemporaries();
    });

    it('data that fails the coarse signature too ends in a whole download checked against the identity', async () => {
      const pub = await env.publish('w.bin', next);
      // The coarse signature inside the message describes another file; the data and the identity agree.
      const other = join(env.tmp.path, 'other.bin');
      await writeFile(other, flipped(next, 777_777));
      const otherCoarse = join(env.tmp.path, 'other.zsync');
      await make({ input: other, output: otherCoarse, blockSize: COARSE, engine: 'js', force: true });
      const msg = JSON.parse(pub.message);
      msg.zsync.value = (await readFile(otherCoarse)).toString('base64');
      const target = join(env.work, 'w.bin');
      await writeFile(target, OLD);
      const result = await env.syncJson(JSON.stringify(msg), target);
      expect(same(await readFile(target), next)).toBe(true);
      expect(result.twoLevel.level).toBe('whole');
      await env.noTemporaries();
    });

    it('data that matches neither signature nor identity leaves the old file in place (exit 1)', async () => {
      const pub = await env.publish('bad.bin', next);
      // Republished after the message, changed where the local copy differs too (so those bytes are fetched).
      await writeFile(join(env.www, 'bad.bin'), flipped(next, Math.floor(0.185 * (next.length - 4096)) + 100));
      const target = join(env.work, 'bad.bin');
      await writeFile(target, OLD);
      const run = await runCli(['sync', '--json', '--engine', 'js', '-', target], { input: pub.message });
      expect(run.exitCode).toBe(1);
      expect(same(await readFile(target), OLD)).toBe(true);
      await env.noTemporaries();
    });
  });

  it('subscribe applies a two-level message through sync (spool)', async () => {
    const next = scattered(OLD, 0.003, 23);
    const pub = await env.publish('sub/s.bin', next);
    const spool = join(env.tmp.path, 'spool');
    const mirror = join(env.tmp.path, 'mirror');
    await mkdir(join(mirror, 'sub'), { recursive: true });
    await mkdir(spool, { recursive: true });
    await writeFile(join(mirror, 'sub', 's.bin'), OLD);
    await utimes(join(mirror, 'sub', 's.bin'), new Date(2020, 0, 1), new Date(2020, 0, 1)); // older than the message
    await writeFile(join(spool, '0001.json'), pub.message);
    await env.nginx.clearLog();
    const run = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(same(await readFile(join(mirror, 'sub', 's.bin')), next), run.stdout + run.stderr).toBe(true);
    const log = await env.nginx.readLog();
    const fineBytes = log.filter((e) => e.path === '/sub/s.bin.zsync').reduce((n, e) => n + e.bodyBytesSent, 0);
    // The two-level path ran (fine pieces were read); how much more subscribe reads to keep signatures is signature-reuse's business.
    expect(fineBytes).toBeGreaterThan(0);
  });

  it('over https with a private CA', async () => {
    const tls = await startNginx({ root: env.www, tls: true });
    try {
      const next = scattered(OLD, 0.003, 29);
      const pub = await env.publish('tls.bin', next, tls.url);
      const target = join(env.work, 'tls.bin');
      await writeFile(target, OLD);
      const result = await env.syncJson(pub.message, target, ['--ca-file', tls.caFile!]);
      expect(same(await readFile(target), next)).toBe(true);
      expect(result.twoLevel.level).toBe('fine');
      expect(result.signatureBytes).toBeLessThan(pub.fine.length);
    } finally {
      await tls.stop();
    }
  });

  it('over file: URLs', async () => {
    const next = scattered(OLD, 0.003, 17);
    const pub = await env.publish('file.bin', next, pathToFileURL(env.www).href);
    const target = join(env.work, 'file.bin');
    await writeFile(target, OLD);
    const result = await env.syncJson(pub.message, target);
    expect(same(await readFile(target), next)).toBe(true);
    expect(result.twoLevel.level).toBe('fine');
    expect(result.signatureBytes).toBeLessThan(pub.fine.length);
  });

  it.skipIf(!hasSshd)('over sftp', async () => {
    const next = scattered(OLD, 0.003, 19);
    const pub = await env.publish('sftp.bin', next, `sftp://${env.sshd!.user}@127.0.0.1:${env.sshd!.port}${env.www}`);
    const target = join(env.work, 'sftp.bin');
    await writeFile(target, OLD);
    const result = await env.syncJson(pub.message, target, ['--ssh-key', env.sshd!.privateKeyPath, '--known-hosts', env.sshd!.knownHostsPath]);
    expect(same(await readFile(target), next)).toBe(true);
    expect(result.twoLevel.level).toBe('fine');
    expect(result.signatureBytes).toBeLessThan(pub.fine.length);
    // sftp: a missing fine file falls back too.
    const pub2 = await env.publish('sftp2.bin', next, `sftp://${env.sshd!.user}@127.0.0.1:${env.sshd!.port}${env.www}`);
    await rm(pub2.finePath);
    const target2 = join(env.work, 'sftp2.bin');
    await writeFile(target2, OLD);
    const result2 = await env.syncJson(pub2.message, target2, ['--ssh-key', env.sshd!.privateKeyPath, '--known-hosts', env.sshd!.knownHostsPath]);
    expect(same(await readFile(target2), next)).toBe(true);
    expect(result2.twoLevel.level).toBe('coarse');
  });
});
