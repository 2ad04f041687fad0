// Hostile and broken messages on a spool, between two good ones: each is refused with a reason
// (moved to rejected/), nothing lands outside --dir, an existing file is never damaged, and the
// subscriber goes on to apply the good message after them.

import { mkdir, readFile, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { buildFileMessage } from '../../src/pump/message.js';
import { runCli } from '../helpers/cli.js';
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
    expect(reasons['over-limit']).toMatch(/over the \d+-byte limit/);
    expect(reasons['lying-signature']).toMatch(/sha512|SHA-1/);
    // Each refusal was logged, and the spool holds nothing else.
    for (const name of names) expect(run.stderr).toContain(name);
    expect((await readdir(spool)).filter((n) => n.endsWith('.json'))).toEqual([]);
    // Nothing was written outside --dir, and the local copy survived the lie.
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(tmp.path)).sort()).toEqual(['mirror', 'other.bin', 'outside', 'pub', 'spool']);
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
