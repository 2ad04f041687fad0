// Announcements may carry spec 0.8 signatures (announce --strong-hash / --signature-format), and
// a subscriber applies them as it applies 0.6.2 ones: a delta sync from its old copy over nginx.

import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAnnouncement } from '../../src/format/announcement.js';
import { parseControlFile } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const next = seededBytes(3 << 20, 51);
const old = new Uint8Array(next);
for (let i = 0; i < old.length; i += 300_000) old[i] = old[i]! ^ 0x33;

describe.skipIf(!requireTool('nginx', 'nginx-light'))('announce with spec 0.8 signatures', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await mkdir(join(tmp.path, 'pub'));
    await writeFile(join(tmp.path, 'pub', 'big.bin'), next);
    nginx = await startNginx({ root: join(tmp.path, 'pub') });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  it.each([
    [['--strong-hash', 'md5'], 'MD5'],
    [['--strong-hash', 'sha224'], 'SHA-224'],
    [['--signature-format', '0.8'], 'MD4'],
  ])('announce %j inlines a %s signature and subscribe rebuilds the file from its old copy', async (flags, hash) => {
    const spool = join(tmp.path, `spool-${hash}`);
    const mirror = join(tmp.path, `mirror-${hash}`);
    await mkdir(mirror);
    await writeFile(join(mirror, 'big.bin'), old);
    await utimes(join(mirror, 'big.bin'), new Date(Date.UTC(2020, 0, 1)), new Date(Date.UTC(2020, 0, 1))); // older than the announced one
    const announced = await runCli(['announce', '--base-url', nginx.url, '--root', join(tmp.path, 'pub'), '--post', `spool:${spool}`, ...flags, join(tmp.path, 'pub', 'big.bin')]);
    expect(announced.exitCode, announced.stderr).toBe(0);
    const names = (await readdir(spool)).filter((n) => n.endsWith('.json'));
    expect(names).toHaveLength(1);
    const message = parseAnnouncement(await readFile(join(spool, names[0]!)));
    expect(message.zsync?.kind).toBe('inline');
    const signature = parseControlFile(message.zsync!.kind === 'inline' ? message.zsync!.bytes : new Uint8Array());
    expect(signature).toMatchObject({ zsyncVersion: '0.8.0', strongHash: hash, fileHash: { algorithm: 'SHA-256' } });
    // Auto block size counts spec 0.8's longer records: the signature still fits inline.
    expect(message.zsync!.kind === 'inline' && message.zsync!.bytes.length).toBeLessThanOrEqual(48 * 1024);

    const subscribed = await runCli(['subscribe', `spool:${spool}`, '--dir', mirror, '--once', '--json']);
    expect(subscribed.exitCode, subscribed.stderr).toBe(0);
    expect(JSON.parse(subscribed.stdout.trim().split('\n').pop()!)).toMatchObject({ relPath: 'big.bin', action: 'delta' });
    expect((await readFile(join(mirror, 'big.bin'))).equals(Buffer.from(next))).toBe(true);
  });

  it('refuses --signature-format 0.6.2 with --strong-hash md5 as a usage error', async () => {
    const run = await runCli(['announce', '--base-url', nginx.url, '--root', join(tmp.path, 'pub'), '--signature-format', '0.6.2', '--strong-hash', 'md5', join(tmp.path, 'pub', 'big.bin')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/--strong-hash needs format 0.8 \(make --format 0.8, announce\/watch --signature-format 0.8\)/);
  });
});
