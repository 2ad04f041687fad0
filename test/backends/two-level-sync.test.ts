// Two-level messages (a coarse .zsync inline, a fine .zsync beside the data) synced by the CLI over
// a real nginx, sshd and file: URLs: every result equals the new file, only the fine records and
// fine blocks that are needed are fetched (nginx's log), and every broken fine signature (404,
// truncated, republished, lying) falls back and still ends with the right file.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { make } from '../../src/api.js';
import { renderAnnouncement, v03Time } from '../../src/format/announcement.js';
import { parseControlFileHeader } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';
import { startSshd, type SshdServer } from '../helpers/sshd.js';

const hasNginx = requireTool('nginx', 'nginx-light');
const hasSshd = requireTool('sshd', 'openssh-server');

const COARSE = 256 << 10;
const FINE = 2048;
const SIZE = (4 << 20) + 777; // a last partial block at both levels

const concat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length)));
const sha512 = (data: Uint8Array): string => createHash('sha512').update(data).digest('base64');
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

function scattered(data: Uint8Array, fraction: number, seed: number): Uint8Array {
  const out = new Uint8Array(data);
  const edits = Math.max(1, Math.round((data.length * fraction) / 4096));
  const noise = seededBytes(4096, seed);
  for (let i = 0; i < edits; i++) out.set(noise, Math.floor(((i + 0.37) / edits) * (data.length - 4096)));
  return out;
}

/** `data` with `n` bytes flipped at `offset`. */
function flipped(data: Uint8Array, offset: number, n = 1): Uint8Array {
  const out = new Uint8Array(data);
  for (let i = offset; i < offset + n && i < out.length; i++) out[i] = out[i]! ^ 0x5a;
  return out;
}

interface Published {
  message: string;
  finePath: string;
  fine: Uint8Array;
}

describe.skipIf(!hasNginx)('two-level sync', () => {
  let tmp: DirectoryResult;
  let www: string;
  let work: string;
  let nginx: NginxServer;
  let sshd: SshdServer | undefined;
  const OLD = seededBytes(SIZE, 21);

  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    www = join(tmp.path, 'www');
    work = join(tmp.path, 'work');
    await mkdir(www, { recursive: true });
    await mkdir(work, { recursive: true });
    nginx = await startNginx({ root: www });
    if (hasSshd) sshd = await startSshd();
  });
  afterAll(async () => {
    await nginx?.stop();
    await sshd?.stop();
    await tmp?.cleanup();
  });

  /** Put `data` on the server as `name` with a fine NAME.zsync; the message carries the coarse one inline. */
  async function publish(name: string, data: Uint8Array, baseUrl = nginx.url, fineBlock = FINE): Promise<Published> {
    const file = join(www, name);
    await writeFile(file, data);
    const coarsePath = join(tmp.path, `${name}.coarse.zsync`);
    const finePath = `${file}.zsync`;
    await make({ input: file, output: coarsePath, blockSize: COARSE, engine: 'js', force: true });
    await make({ input: file, output: finePath, blockSize: fineBlock, engine: 'js', force: true });
    const coarse = await readFile(coarsePath);
    const fine = await readFile(finePath);
    const message = renderAnnouncement({
      pubTime: v03Time(Date.now()), baseUrl, relPath: name, size: data.length, identity: { method: 'sha512', value: sha512(data) },
      zsync: { kind: 'inline', bytes: coarse, blockSize: COARSE, fine: { retrievePath: `${name}.zsync`, size: fine.length, blockSize: fineBlock, identity: { method: 'sha512', value: sha512(fine) } } },
      extra: {},
    });
    return { message, finePath, fine };
  }

  async function syncJson(message: string, target: string, extra: string[] = []): Promise<Record<string, any>> {
    const run = await runCli(['sync', '--json', '--engine', 'js', ...extra, '-', target], { input: message });
    expect(run.exitCode, run.stderr).toBe(0);
    return JSON.parse(run.stdout);
  }

  async function noTemporaries(): Promise<void> {
    expect((await readdir(work)).filter((n) => n.includes('zpump-tmp'))).toEqual([]);
  }

  const matrix: Array<{ name: string; make(old: Uint8Array): { next: Uint8Array; seeds: Uint8Array[]; targetExists: boolean } }> = [
    { name: 'identical', make: (old) => ({ next: old, seeds: [], targetExists: true }) },
    { name: '1% scattered 4 KiB rewrites', make: (old) => ({ next: scattered(old, 0.01, 9), seeds: [], targetExists: true }) },
    { name: '16 bytes inserted near the start', make: (old) => ({ next: concat(old.subarray(0, 5000), seededBytes(16, 3), old.subarray(5000)), seeds: [], targetExists: true }) },
    { name: '1/16 appended', make: (old) => ({ next: concat(old, seededBytes(Math.floor(old.length / 16), 4)), seeds: [], targetExists: true }) },
    { name: 'truncated', make: (old) => ({ next: old.subarray(0, Math.floor(old.length * 0.75) + 123), seeds: [], targetExists: true }) },
    { name: 'entirely different', make: (old) => ({ next: seededBytes(old.length, 77), seeds: [], targetExists: true }) },
    { name: 'no local copy', make: (old) => ({ next: old, seeds: [], targetExists: false }) },
    { name: 'two seeds with half the blocks each', make: (old) => ({ next: flipped(old, 3 * COARSE + 100), seeds: [old.subarray(0, old.length / 2), old.subarray(old.length / 2)], targetExists: false }) },
  ];

  it.each(matrix.map((c, i) => [c.name, i] as const))('equals the new file: %s', async (name, i) => {
    const { next, seeds, targetExists } = matrix[i]!.make(OLD);
    const pub = await publish(`m${i}.bin`, next);
    const target = join(work, `m${i}.bin`);
    if (targetExists) await writeFile(target, OLD);
    const seedArgs: string[] = [];
    for (const [k, s] of seeds.entries()) {
      const p = join(work, `m${i}.seed${k}`);
      await writeFile(p, s);
      seedArgs.push('--seed', p);
    }
    const result = await syncJson(pub.message, target, seedArgs);
    expect(same(await readFile(target), next), name).toBe(true);
    if (targetExists || seeds.length > 0) {
      expect(result.twoLevel?.level).not.toBe('whole');
      expect(result.bytesFetched).toBeGreaterThanOrEqual(result.signatureBytes);
    }
    await noTemporaries();
  });

  it('fetches only the fine records and fine blocks a one-block edit needs (nginx log)', async () => {
    const next = flipped(OLD, 5 * COARSE + 7 * FINE + 100, 10); // inside one fine block
    const pub = await publish('one.bin', next);
    const target = join(work, 'one.bin');
    await writeFile(target, OLD);
    await nginx.clearLog();
    const result = await syncJson(pub.message, target);
    expect(same(await readFile(target), next)).toBe(true);
    const log = await nginx.readLog();
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

  const edges: Array<[string, (old: Uint8Array) => Uint8Array]> = [
    ['a byte on a coarse block boundary', (old) => flipped(old, 6 * COARSE)],
    ['the last byte before a coarse boundary', (old) => flipped(old, 6 * COARSE - 1)],
    ['a byte on a fine block boundary', (old) => flipped(old, 9 * FINE)],
    ['the last partial block', (old) => flipped(old, old.length - 5)],
    ['grown across a coarse boundary', (old) => concat(old, seededBytes(COARSE - 777 + 3000, 5))],
    ['shrunk across a coarse boundary', (old) => old.subarray(0, old.length - 777 - 3000)],
    ['bytes deleted before a coarse boundary (everything after shifts)', (old) => concat(old.subarray(0, 2 * COARSE - 10), old.subarray(2 * COARSE + 90))],
    // Both coarse neighbours stay in place; the fine blocks in between moved by 100 bytes: only a slide around them finds them.
    ['100 bytes inserted and 100 deleted inside one coarse block', (old) => concat(old.subarray(0, 3 * COARSE + 1000), seededBytes(100, 6), old.subarray(3 * COARSE + 1000, 3 * COARSE + 60_000), old.subarray(3 * COARSE + 60_100))],
  ];
  it.each(edges.map(([n], i) => [n, i] as const))('edge: %s', async (name, i) => {
    const next = edges[i]![1](OLD);
    const pub = await publish(`e${i}.bin`, next);
    const target = join(work, `e${i}.bin`);
    await writeFile(target, OLD);
    const result = await syncJson(pub.message, target);
    expect(same(await readFile(target), next), name).toBe(true);
    // 'coarse' when the coarse scan alone found everything (a shrunk file's new last block).
    expect(result.twoLevel.problems, JSON.stringify(result.twoLevel)).toBeUndefined();
    // Only what changed, at fine granularity: far less than a coarse block per edit.
    const dataBytes = result.bytesFetched - result.signatureBytes;
    expect(dataBytes).toBeLessThan(Math.abs(next.length - OLD.length) + 4 * FINE + 2000);
  });

  describe('a fine signature that cannot be used falls back and still ends with the right file', () => {
    const next = scattered(OLD, 0.002, 13);
    const cases: Array<[string, (pub: Published) => Promise<void>, string]> = [
      ['missing (404)', async (pub) => rm(pub.finePath), 'coarse'],
      ['truncated (the records it needs are gone)', async (pub) => truncate(pub.finePath, parseControlFileHeader(pub.fine)!.headerLength + 100), 'coarse'],
      ['cut inside its header', async (pub) => truncate(pub.finePath, 50), 'coarse'],
      ['replaced by a newer one between message and fetch', async (pub) => {
        const newer = join(tmp.path, 'newer.bin');
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
        const oldFile = join(tmp.path, 'old-for-lie.bin');
        await writeFile(oldFile, OLD);
        const oldFine = join(tmp.path, 'old-for-lie.zsync');
        await make({ input: oldFile, output: oldFine, blockSize: FINE, engine: 'js', force: true });
        const oldBytes = await readFile(oldFine);
        const o = parseControlFileHeader(oldBytes)!;
        const n = parseControlFileHeader(pub.fine)!;
        await writeFile(pub.finePath, concat(pub.fine.subarray(0, n.headerLength), oldBytes.subarray(o.headerLength)));
      }, 'coarse'],
    ];
    it.each(cases.map(([n], i) => [n, i] as const))('%s', async (name, i) => {
      const pub = await publish(`f${i}.bin`, next);
      await cases[i]![1](pub);
      const target = join(work, `f${i}.bin`);
      await writeFile(target, OLD);
      const result = await syncJson(pub.message, target);
      expect(same(await readFile(target), next), name).toBe(true);
      expect(result.twoLevel.level).toBe(cases[i]![2]);
      expect(result.twoLevel.problems.length).toBeGreaterThan(0);
      await noTemporaries();
    });

    it('data that fails the coarse signature too ends in a whole download checked against the identity', async () => {
      const pub = await publish('w.bin', next);
      // The coarse signature inside the message describes another file; the data and the identity agree.
      const other = join(tmp.path, 'other.bin');
      await writeFile(other, flipped(next, 777_777));
      const otherCoarse = join(tmp.path, 'other.zsync');
      await make({ input: other, output: otherCoarse, blockSize: COARSE, engine: 'js', force: true });
      const msg = JSON.parse(pub.message);
      msg.zsync.value = (await readFile(otherCoarse)).toString('base64');
      const target = join(work, 'w.bin');
      await writeFile(target, OLD);
      const result = await syncJson(JSON.stringify(msg), target);
      expect(same(await readFile(target), next)).toBe(true);
      expect(result.twoLevel.level).toBe('whole');
      await noTemporaries();
    });

    it('data that matches neither signature nor identity leaves the old file in place (exit 1)', async () => {
      const pub = await publish('bad.bin', next);
      // Republished after the message, changed where the local copy differs too (so those bytes are fetched).
      await writeFile(join(www, 'bad.bin'), flipped(next, Math.floor(0.185 * (next.length - 4096)) + 100));
      const target = join(work, 'bad.bin');
      await writeFile(target, OLD);
      const run = await runCli(['sync', '--json', '--engine', 'js', '-', target], { input: pub.message });
      expect(run.exitCode).toBe(1);
      expect(same(await readFile(target), OLD)).toBe(true);
      await noTemporaries();
    });
  });

  it('over file: URLs', async () => {
    const next = scattered(OLD, 0.003, 17);
    const pub = await publish('file.bin', next, pathToFileURL(www).href);
    const target = join(work, 'file.bin');
    await writeFile(target, OLD);
    const result = await syncJson(pub.message, target);
    expect(same(await readFile(target), next)).toBe(true);
    expect(result.twoLevel.level).toBe('fine');
    expect(result.signatureBytes).toBeLessThan(pub.fine.length);
  });

  it.skipIf(!hasSshd)('over sftp', async () => {
    const next = scattered(OLD, 0.003, 19);
    const pub = await publish('sftp.bin', next, `sftp://${sshd!.user}@127.0.0.1:${sshd!.port}${www}`);
    const target = join(work, 'sftp.bin');
    await writeFile(target, OLD);
    const result = await syncJson(pub.message, target, ['--ssh-key', sshd!.privateKeyPath, '--known-hosts', sshd!.knownHostsPath]);
    expect(same(await readFile(target), next)).toBe(true);
    expect(result.twoLevel.level).toBe('fine');
    expect(result.signatureBytes).toBeLessThan(pub.fine.length);
    // sftp: a missing fine file falls back too.
    const pub2 = await publish('sftp2.bin', next, `sftp://${sshd!.user}@127.0.0.1:${sshd!.port}${www}`);
    await rm(pub2.finePath);
    const target2 = join(work, 'sftp2.bin');
    await writeFile(target2, OLD);
    const result2 = await syncJson(pub2.message, target2, ['--ssh-key', sshd!.privateKeyPath, '--known-hosts', sshd!.knownHostsPath]);
    expect(same(await readFile(target2), next)).toBe(true);
    expect(result2.twoLevel.level).toBe('coarse');
  });
});
