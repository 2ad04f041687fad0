// A server that misbehaves must never leave TARGET half-written: each case ends in a clear error
// (TARGET unchanged, no temporary file) or in a correct result.

import { createServer, type Server } from 'node:http';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';

type Mode = 'ok' | 'wrong-bytes' | 'ignore-range' | 'drop-mid-body' | '404' | '500-once';

const NEW = seededBytes(2 << 20, 21);
const OLD = (() => { const o = new Uint8Array(NEW); for (let i = 0; i < o.length; i += 100_000) o[i] = o[i]! ^ 0xff; return o; })();

let tmp: DirectoryResult;
let server: Server;
let base = '';
let mode: Mode = 'ok';
let failuresLeft = 0;
let control: Uint8Array;

function parseRanges(header: string | undefined): Array<[number, number]> {
  if (!header) return [];
  return header.replace(/^bytes=/, '').split(',').map((r) => r.split('-').map(Number) as [number, number]);
}

beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  await writeFile(join(tmp.path, 'new.bin'), NEW);
  const made = await runCli(['make', '--engine', 'js', '--force', '-b', '4k', '-u', 'new.bin', '-o', join(tmp.path, 'new.bin.zsync'), join(tmp.path, 'new.bin')]);
  expect(made.exitCode).toBe(0);
  control = await readFile(join(tmp.path, 'new.bin.zsync'));
  server = createServer((req, res) => {
    if (req.url === '/new.bin.zsync') { res.end(control); return; }
    if (req.url === '/corrupt.zsync') { res.end(control.subarray(0, control.length - 7)); return; }
    if (req.url !== '/new.bin') { res.statusCode = 404; res.end('not found'); return; }
    if (mode === '404') { res.statusCode = 404; res.end('gone'); return; }
    if (mode === '500-once' && failuresLeft-- > 0) { res.statusCode = 500; res.end('oops'); return; }
    const ranges = parseRanges(req.headers.range);
    if (mode === 'ignore-range' || ranges.length === 0) { res.setHeader('content-length', NEW.length); res.end(NEW); return; }
    // One range per reply (a server that honours only the first): the client asks again for the rest.
    const [start, endIncl] = ranges[0]!;
    const end = Math.min(endIncl, NEW.length - 1);
    let body = Buffer.from(NEW.subarray(start, end + 1));
    if (mode === 'wrong-bytes') { body = Buffer.from(body); body[0] = body[0]! ^ 1; }
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${end}/${NEW.length}`);
    res.setHeader('content-length', body.length);
    if (mode === 'drop-mid-body' && failuresLeft-- > 0) { res.write(body.subarray(0, body.length >> 1)); setTimeout(() => res.socket?.destroy(), 20); return; }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server?.close();
  await tmp?.cleanup();
});

let target = '';
beforeEach(async () => {
  target = join(tmp.path, `t-${Math.random().toString(36).slice(2)}.bin`);
  await writeFile(target, OLD);
});

async function syncJs(control = 'new.bin.zsync') {
  return runCli(['sync', '--json', '--engine', 'js', `${base}${control}`, target]);
}

async function expectUntouched(): Promise<void> {
  expect(Buffer.from(await readFile(target)).equals(Buffer.from(OLD))).toBe(true);
  expect((await readdir(tmp.path)).filter((n) => n.includes('zpump-tmp'))).toEqual([]);
}

describe('zpump sync against a faulty server', () => {
  it('recovers when the server honours only the first of several ranges', async () => {
    mode = 'ok';
    const run = await syncJs();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
    expect(JSON.parse(run.stdout).requests).toBeGreaterThan(1);
  });

  it('works when the server ignores Range and sends the whole file (200)', async () => {
    mode = 'ignore-range';
    const run = await syncJs();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
  });

  it('resumes after the connection drops mid-body', async () => {
    mode = 'drop-mid-body';
    failuresLeft = 2;
    const run = await syncJs();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
  });

  it('retries a 500 and succeeds', async () => {
    mode = '500-once';
    failuresLeft = 1;
    const run = await syncJs();
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(await readFile(target)).equals(Buffer.from(NEW))).toBe(true);
  });

  it('refuses wrong bytes for a block: exit 1, target unchanged', async () => {
    mode = 'wrong-bytes';
    const run = await syncJs();
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/do not match the signature/);
    await expectUntouched();
  });

  it('a 404 for the data: exit 1 naming the URL, target unchanged', async () => {
    mode = '404';
    const run = await syncJs();
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/404/);
    expect(run.stderr).toMatch(/new\.bin/);
    await expectUntouched();
  });

  it('a corrupt control file: exit 2 naming the problem', async () => {
    mode = 'ok';
    const run = await syncJs('corrupt.zsync');
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/truncated/);
    await expectUntouched();
  });

  it('a control file whose SHA-1 does not match the data: exit 1, target unchanged', async () => {
    mode = 'ok';
    const lying = Buffer.from(control);
    const at = lying.indexOf('SHA-1: ') + 7;
    lying.write(lying[at] === 0x30 ? '1' : '0', at);
    await writeFile(join(tmp.path, 'lying.zsync'), lying);
    const run = await runCli(['sync', '--engine', 'js', '-u', `${base}new.bin`, join(tmp.path, 'lying.zsync'), target]);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/SHA-1/);
    await expectUntouched();
  });
});
