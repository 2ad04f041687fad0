// https with a private CA, the zsync client drop-in, and announcements as CONTROL — against nginx.

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAnnouncement, v03Time } from '../../src/format/announcement.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const NEW = seededBytes(3 << 20, 31);
const OLD = (() => { const o = new Uint8Array(NEW); for (let i = 0; i < o.length; i += 300_000) o[i] = o[i]! ^ 0x55; return o; })();

describe.skipIf(!requireTool('nginx', 'nginx-light'))('sync over https, drop-in and announcements', () => {
  let tmp: DirectoryResult;
  let tls: NginxServer;
  let plain: NginxServer;
  let www = '';
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    www = join(tmp.path, 'www');
    await mkdir(join(www, 'sub'), { recursive: true });
    await writeFile(join(www, 'sub', 'data.bin'), NEW);
    const made = await runCli(['make', '--engine', 'js', '-b', '16k', join(www, 'sub', 'data.bin')]);
    expect(made.exitCode).toBe(0);
    [tls, plain] = await Promise.all([startNginx({ root: www, tls: true }), startNginx({ root: www })]);
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), plain?.stop()]);
    await tmp?.cleanup();
  });

  it('syncs over https when told the test CA, and refuses an unknown CA', async () => {
    const target = join(tmp.path, 'https.bin');
    await writeFile(target, OLD);
    const refused = await runCli(['sync', '--engine', 'js', `${tls.url}sub/data.bin.zsync`, target]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/certificate not trusted.*--ca-file/);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(OLD))).toBe(true);
    const run = await runCli(['sync', '--json', '--ca-file', tls.caFile!, `${tls.url}sub/data.bin.zsync`, target]);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.engine).toBe('js'); // auto: the C client cannot do https
    expect(result.bytesReused).toBeGreaterThan(NEW.length / 2);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
  });

  it('the zsync drop-in updates a file with zsync-style output and -o', async () => {
    const target = join(tmp.path, 'dropin.bin');
    await writeFile(target, OLD);
    const run = await runCli(['zsync', '-o', target, `${plain.url}sub/data.bin.zsync`]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/checksum matches OK/);
    expect(run.stdout).toMatch(/used \d+ local, fetched \d+/);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
    const quiet = await runCli(['zsync', '-q', '-o', target, `${plain.url}sub/data.bin.zsync`]);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).toBe('');
    const usage = await runCli(['zsync']);
    expect(usage.exitCode).toBe(3);
  });

  it('takes an announcement (inline signature) as CONTROL, from a file or stdin', async () => {
    const zsync = await readFile(join(www, 'sub', 'data.bin.zsync'));
    const message = renderAnnouncement({
      pubTime: v03Time(Date.now()), baseUrl: plain.url, relPath: 'sub/data.bin', size: NEW.length,
      identity: { method: 'sha512', value: createHash('sha512').update(NEW).digest('base64') },
      zsync: { kind: 'inline', bytes: zsync }, extra: {},
    });
    await writeFile(join(tmp.path, 'msg.json'), message);
    const target = join(tmp.path, 'announced.bin');
    await writeFile(target, OLD);
    const run = await runCli(['sync', '--json', '--engine', 'js', join(tmp.path, 'msg.json'), target]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).bytesReused).toBeGreaterThan(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
    // No local copy: fetched whole and checked against the sha512 identity.
    const fresh = join(tmp.path, 'fresh.bin');
    const whole = await runCli(['sync', '--json', '-', fresh], { input: message });
    expect(whole.exitCode, whole.stderr).toBe(0);
    expect(JSON.parse(whole.stdout)).toMatchObject({ bytesReused: 0, verified: true });
    expect(Buffer.from(await readFile(fresh)).equals(Buffer.from(NEW))).toBe(true);
  });

  it('refuses a whole download whose identity does not match', async () => {
    const message = renderAnnouncement({
      pubTime: v03Time(Date.now()), baseUrl: plain.url, relPath: 'sub/data.bin', size: NEW.length,
      identity: { method: 'sha512', value: createHash('sha512').update('other').digest('base64') }, extra: {},
    });
    const target = join(tmp.path, 'wrong.bin');
    const run = await runCli(['sync', '-', target], { input: message });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/sha512/);
    await expect(readFile(target)).rejects.toThrow();
  });
});
