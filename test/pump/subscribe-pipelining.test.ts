// Several files in flight (--prefetch): a small file announced after a big one that is still
// arriving is applied meanwhile, not queued behind it; with --prefetch 1 it waits (the order the
// bus hands messages out).

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v03Time, type Announcement } from '../../src/format/announcement.js';
import { createSpoolSink, createSpoolSource } from '../../src/pump/bus/spool.js';
import { Subscriber, type ApplyReport } from '../../src/pump/subscribe.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const big = seededBytes(96 << 10, 5);
const small = seededBytes(3000, 6);

describe.skipIf(!requireTool('nginx', 'nginx-light'))('subscribe: files in flight share the time', () => {
  let tmp: DirectoryResult;
  let slow: NginxServer;
  let fast: NginxServer;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await writeFile(join(tmp.path, 'big.bin'), big);
    await writeFile(join(tmp.path, 'small.bin'), small);
    // 96 KiB at 32 KiB/s: the big file is still arriving for ~3 s.
    [slow, fast] = await Promise.all([startNginx({ root: tmp.path, limitRate: 32 << 10 }), startNginx({ root: tmp.path })]);
  });
  afterAll(async () => {
    await Promise.all([slow?.stop(), fast?.stop()]);
    await tmp?.cleanup();
  });

  const message = (relPath: string, bytes: Uint8Array, server: NginxServer): Announcement => ({
    pubTime: v03Time(Date.now()), baseUrl: server.url.replace(/\/$/, ''), relPath, size: bytes.length, mtime: v03Time(Date.now() - 60_000),
    identity: { method: 'sha512', value: createHash('sha512').update(bytes).digest('base64') }, extra: {},
  });

  async function applyBoth(prefetch: number): Promise<string[]> {
    const spool = join(tmp.path, `spool-${prefetch}`);
    const mirror = join(tmp.path, `mirror-${prefetch}`);
    await mkdir(mirror);
    const sink = await createSpoolSink(spool);
    await sink.post(message('big.bin', big, slow));
    await sink.post(message('small.bin', small, fast));
    await sink.close();
    const reports: ApplyReport[] = [];
    const s = new Subscriber({ dir: mirror, report: (r) => reports.push(r), log: () => undefined });
    await s.run(createSpoolSource(spool), { once: true, prefetch, signal: new AbortController().signal });
    expect(Buffer.from(await readFile(join(mirror, 'big.bin'))).equals(Buffer.from(big))).toBe(true);
    expect(Buffer.from(await readFile(join(mirror, 'small.bin'))).equals(Buffer.from(small))).toBe(true);
    return reports.map((r) => r.relPath);
  }

  it('with --prefetch 2 the small file is in place before the big one announced ahead of it', async () => {
    expect(await applyBoth(2)).toEqual(['small.bin', 'big.bin']);
  });

  it('with --prefetch 1 it waits its turn', async () => {
    expect(await applyBoth(1)).toEqual(['big.bin', 'small.bin']);
  });
});
