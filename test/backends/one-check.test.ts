// One verification hash: when a message carries a sha512 (or md5) identity, that is the whole-file
// check of the js engine (the control file's SHA-1 is not a second one). Wrong bytes are still caught:
// per block against the signature, and at the end against the identity.

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sync } from '../../src/api.js';
import type { Announcement } from '../../src/format/announcement.js';
import { controlFile } from '../helpers/control-files.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { requireTool } from '../helpers/require-tool.js';

const next = seededBytes((1 << 20) + 333, 71);
const old = new Uint8Array(next);
for (let i = 0; i < old.length; i += 150_000) old[i] = old[i]! ^ 0x33;
const other = new Uint8Array(next);
other[450_100] = other[450_100]! ^ 1; // one byte off, in a block the target lacks: fetched, not reused

const digest = (method: 'sha512' | 'md5', b: Uint8Array) => createHash(method).update(b).digest('base64');

describe.skipIf(!requireTool('nginx', 'nginx-light'))('js engine: the sha512 identity is the one whole-file check', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  let n = 0;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await writeFile(join(tmp.path, 'next.bin'), next);
    await writeFile(join(tmp.path, 'other.bin'), other);
    nginx = await startNginx({ root: tmp.path });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  /** A message for `served` (fetched from nginx) with the signature of `signed` and the identity of `identity`. */
  async function apply(o: { served: string; signed: string; identity: Uint8Array; sha1Line?: string; method?: 'sha512' | 'md5' }) {
    let signature = await controlFile({ input: join(tmp.path, o.signed), urls: [o.served] });
    if (o.sha1Line) signature = Buffer.from(Buffer.from(signature).toString('latin1').replace(/^SHA-1: [0-9a-f]+$/m, o.sha1Line), 'latin1');
    const message: Announcement = {
      pubTime: '20260101T000000', baseUrl: nginx.url.replace(/\/$/, ''), relPath: o.served, size: next.length,
      identity: { method: o.method ?? 'sha512', value: digest(o.method ?? 'sha512', o.identity) }, zsync: { kind: 'inline', bytes: signature }, extra: {},
    };
    const target = join(tmp.path, `t${n++}.out`);
    await writeFile(target, old);
    const outcome = await sync({ control: message, target, engine: 'js', threads: 1 }).then((r) => ({ ok: r }), (error: unknown) => ({ error: error as Error & { code?: string } }));
    return { ...outcome, bytes: await readFile(target) };
  }

  it('takes a file whose control file carries a wrong SHA-1 when the identity matches: the identity is the check', async () => {
    const r = await apply({ served: 'next.bin', signed: 'next.bin', identity: next, sha1Line: `SHA-1: ${'0'.repeat(40)}` });
    expect('ok' in r ? r.ok : r.error).toMatchObject({ engine: 'js', verified: true });
    expect(r.bytes.equals(Buffer.from(next))).toBe(true);
  });

  it('catches a server sending bytes that do not match the signature, block by block', async () => {
    const r = await apply({ served: 'other.bin', signed: 'next.bin', identity: next });
    expect('error' in r && r.error).toMatchObject({ code: 'E_VERIFY', message: expect.stringMatching(/block \d+/) });
    expect(r.bytes.equals(Buffer.from(old))).toBe(true);
  });

  it('catches at the end wrong bytes that match a lying signature: the identity refuses them', async () => {
    const r = await apply({ served: 'other.bin', signed: 'other.bin', identity: next });
    expect('error' in r && r.error).toMatchObject({ code: 'E_VERIFY', message: expect.stringMatching(/sha512 identity/) });
    expect(r.bytes.equals(Buffer.from(old))).toBe(true);
  });

  it('refuses a lying identity even when signature and server agree', async () => {
    const r = await apply({ served: 'next.bin', signed: 'next.bin', identity: other });
    expect('error' in r && r.error).toMatchObject({ code: 'E_VERIFY', message: expect.stringMatching(/sha512 identity/) });
    expect(r.bytes.equals(Buffer.from(old))).toBe(true);
  });

  it('an md5 identity is the check too: a wrong SHA-1 line passes, a lying md5 identity is refused', async () => {
    const ok = await apply({ served: 'next.bin', signed: 'next.bin', identity: next, method: 'md5', sha1Line: `SHA-1: ${'0'.repeat(40)}` });
    expect('ok' in ok ? ok.ok : ok.error).toMatchObject({ engine: 'js', verified: true });
    expect(ok.bytes.equals(Buffer.from(next))).toBe(true);
    const lying = await apply({ served: 'next.bin', signed: 'next.bin', identity: other, method: 'md5' });
    expect('error' in lying && lying.error).toMatchObject({ code: 'E_VERIFY', message: expect.stringMatching(/md5 identity/) });
    expect(lying.bytes.equals(Buffer.from(old))).toBe(true);
  });
});
