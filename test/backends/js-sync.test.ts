// The js engine against nginx on control files other generators write (spec 0.8, zsync-format.md
// §11) and on 0.6.2's leniencies (§6.1), each a hand-made control file; and the several-URL rule:
// a URL that answers 404 or refuses connections is left for the next one.

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { controlFile, controlFileWith } from '../helpers/control-files.js';
import { seededBytes } from '../helpers/data.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { requireTool } from '../helpers/require-tool.js';

const next = seededBytes((1 << 20) + 777, 31);
const old = new Uint8Array(next);
for (let i = 0; i < old.length; i += 100_000) old[i] = old[i]! ^ 0x5a; // ~11 changed blocks

describe.skipIf(!requireTool('nginx', 'nginx-light'))('js engine: control files beyond zsyncmake 0.6.2, several URLs', () => {
  let tmp: DirectoryResult;
  let nginx: NginxServer;
  let n = 0;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await writeFile(join(tmp.path, 'data.bin'), next);
    nginx = await startNginx({ root: tmp.path });
  });
  afterAll(async () => {
    await nginx?.stop();
    await tmp?.cleanup();
  });

  /** Sync a target holding `old` (or nothing) from this control file; the parsed --json and the target's bytes. */
  async function sync(control: Uint8Array, opts: { seed?: boolean; args?: string[] } = {}) {
    const name = `c${n++}`;
    const path = join(tmp.path, `${name}.zsync`);
    const target = join(tmp.path, `${name}.out`);
    await writeFile(path, control);
    if (opts.seed !== false) await writeFile(target, old);
    const run = await runCli(['sync', '--json', '--engine', 'js', ...(opts.args ?? []), path, target]);
    const json = run.stdout.trim() ? JSON.parse(run.stdout.trim().split('\n').pop()!) : {};
    const bytes = await readFile(target).catch(() => undefined);
    return { run, json, bytes, path };
  }
  const data = () => join(tmp.path, 'data.bin');
  const url = () => `${nginx.url}data.bin`;

  it.each(['MD4', 'MD5', 'SHA-224'] as const)('rebuilds the file from a spec 0.8 %s file made by zpump, verified by its SHA-256', async (strongHash) => {
    for (const seed of [true, false]) {
      const { run, json, bytes } = await sync(await controlFile({ input: data(), urls: [url()], strongHash }), { seed });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
      expect(json).toMatchObject({ engine: 'js', verified: true, dataUrl: url() });
      if (seed) expect(json.bytesReused).toBeGreaterThan(next.length * 0.9);
      else expect(json.bytesReused).toBe(0);
    }
  });

  it('refuses a result whose SHA-256 does not match File-Hash, leaving the target as it was', async () => {
    const wrong = `File-Hash: SHA-256:${createHash('sha256').update('something else').digest('hex')}`;
    const { run, bytes } = await sync(await controlFile({ input: data(), urls: [url()], strongHash: 'MD5', edits: [{ key: 'File-Hash', line: wrong }] }));
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/SHA-256 [0-9a-f]{64}, the control file's File-Hash says/);
    expect(Buffer.from(bytes!).equals(Buffer.from(old))).toBe(true);
  });

  it('takes a File-Hash in an algorithm it cannot compute, unverified, and says so (--json, inspect)', async () => {
    const { run, json, bytes, path } = await sync(await controlFile({ input: data(), urls: [url()], strongHash: 'SHA-224', edits: [{ key: 'File-Hash', line: 'File-Hash: BLAKE3:0123abcd' }] }));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
    expect(json.verified).toBe(false);
    const inspect = JSON.parse((await runCli(['inspect', '--json', path])).stdout);
    expect(inspect.verifiedWith).toBeNull();
    expect(inspect.problems.join(' ')).toMatch(/File-Hash BLAKE3: an algorithm zpump cannot compute/);
  });

  it.each([
    ['one stray newline after the records', { tail: new Uint8Array([0x0a]) }, /1 bytes after the/],
    ['100 bytes of garbage after the records', { tail: seededBytes(100, 5) }, /100 bytes after the/],
    ['an MTime that is not a date', { edits: [{ key: 'MTime', line: 'MTime: <not a date>' }] }, /MTime "<not a date>" .* ignored/],
  ])('reads a file with %s, as zsync 0.6.2 does (and inspect notes it)', async (_name, change, note) => {
    for (const strongHash of [undefined, 'MD4'] as const) {
      const { run, bytes, path } = await sync(await controlFile({ input: data(), urls: [url()], strongHash, ...change }));
      expect(run.exitCode, run.stderr).toBe(0);
      expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
      const inspect = await runCli(['inspect', path]);
      expect(inspect.exitCode).toBe(0);
      expect(inspect.stdout).toMatch(note);
    }
  });

  it('reads Hash-Lengths written with spaces', async () => {
    const made = await controlFile({ input: data(), urls: [url()] });
    const lengths = /Hash-Lengths: (\d),(\d),(\d+)/.exec(Buffer.from(made).toString('latin1'))!;
    const { run, bytes } = await sync(await controlFile({ input: data(), urls: [url()], edits: [{ key: 'Hash-Lengths', line: `Hash-Lengths: ${lengths[1]}, ${lengths[2]}, ${lengths[3]}` }] }));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
  });

  it('matches 1-byte weak sums correctly, from an empty target and from an old copy', async () => {
    const control = await controlFileWith(data(), [url()], 4096, { seqMatches: 1, rsumBytes: 1, checksumBytes: 16 });
    for (const seed of [false, true]) {
      const { run, json, bytes } = await sync(control, { seed });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
      if (seed) expect(json.bytesReused).toBeGreaterThan(next.length * 0.9);
    }
  });

  it('moves on from a URL that answers 404, and from one that refuses connections; --json says which served', async () => {
    const refused = `http://127.0.0.1:${await freePort()}/data.bin`;
    for (const dead of [`${nginx.url}gone/data.bin`, refused]) {
      const { run, json, bytes } = await sync(await controlFile({ input: data(), urls: [dead, url()], strongHash: 'MD5' }));
      expect(run.exitCode, run.stderr).toBe(0);
      expect(Buffer.from(bytes!).equals(Buffer.from(next))).toBe(true);
      expect(json.dataUrl).toBe(url());
      expect(json.servedBy).toBe(url());
      expect(json.failedUrls).toHaveLength(1);
      expect(json.failedUrls[0].url).toBe(dead);
    }
  });

  it('relative URLs are mirrors too, resolved against the control file\'s own URL', async () => {
    const name = `rel${n++}`;
    await writeFile(join(tmp.path, `${name}.zsync`), await controlFile({ input: data(), urls: ['missing/data.bin', 'data.bin'] }));
    const target = join(tmp.path, `${name}.out`);
    const run = await runCli(['sync', '--json', '--engine', 'js', `${nginx.url}${name}.zsync`, target]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).servedBy).toBe(url());
  });

  it('fails with every URL and its reason when none delivers, the target intact', async () => {
    const refused = `http://127.0.0.1:${await freePort()}/data.bin`;
    const { run, bytes } = await sync(await controlFile({ input: data(), urls: [`${nginx.url}nope.bin`, refused] }));
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/none of the control file's 2 URLs delivered the data/);
    expect(run.stderr).toContain(`${nginx.url}nope.bin: `);
    expect(run.stderr).toContain(`${refused}: `);
    expect(Buffer.from(bytes!).equals(Buffer.from(old))).toBe(true);
  });

  it('--url names one place: the URL lines are not tried behind it', async () => {
    const { run } = await sync(await controlFile({ input: data(), urls: [url()] }), { args: ['--url', `${nginx.url}nope.bin`] });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).not.toMatch(/none of the control file/);
  });
});
