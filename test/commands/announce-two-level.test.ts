// announce from the command line with two-level signatures: the message stays within 8 192
// bytes in both wire forms, --signature-dir/--signature-url put the fine file elsewhere under
// baseUrl, and --levels 1 is unchanged.

import { createHash } from 'node:crypto';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fineSignatureOf, parseAnnouncement } from '../../src/format/announcement.js';
import { parseControlFile } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
let root: string;
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
  root = join(tmp.path, 'pub');
  await mkdir(join(root, 'model', 'run12'), { recursive: true });
});
afterAll(async () => { await tmp.cleanup(); });

/** A sparse file (made like `truncate -s`) with seeded data at a few places. */
async function sparse(rel: string, size: number): Promise<string> {
  const path = join(root, ...rel.split('/'));
  const fh = await open(path, 'w');
  await fh.truncate(size);
  for (const at of [0, Math.floor(size / 2), size - 4096]) await fh.write(seededBytes(4096, at + 1), 0, 4096, at);
  await fh.close();
  return path;
}

describe('announce: two levels from the command line', () => {
  it.each([
    ['v03', 1 << 20],
    ['wis2', 1 << 20],
    ['v03', 5 << 20],
    ['wis2', 5 << 20],
    ['v03', 256 << 20],
    ['wis2', 256 << 20],
  ])('%s message for a %i-byte file: at most 8 192 bytes, the fine file beside it', async (format, size) => {
    const path = await sparse(`model/run12/${format}-${size}.grib2`, size);
    const run = await runCli(['announce', '--format', format, '--base-url', 'https://data.example.org/pub', '--root', root, path]);
    expect(run.exitCode, run.stderr).toBe(0);
    const line = run.stdout.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(8192);
    const m = parseAnnouncement(line);
    expect(m.size).toBe(size);
    if (size > 1 << 20) {
      const fine = fineSignatureOf(m);
      if (!('url' in fine)) throw new Error(fine.why);
      const bytes = await readFile(`${path}.zsync`);
      expect(fine.url).toBe(`https://data.example.org/pub/model/run12/${format}-${size}.grib2.zsync`);
      expect(fine.identity.value).toBe(createHash('sha512').update(bytes).digest('base64'));
      expect(parseControlFile(bytes).blockSize).toBe(size < 100_000_000 ? 2048 : 4096);
    }
  });

  it('--signature-dir inside --root: the fine file under it, named under baseUrl', async () => {
    const path = await sparse('model/run12/sigdir.grib2', 3 << 20);
    const sigs = join(root, '.signatures');
    const run = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, '--signature-dir', sigs, path]);
    expect(run.exitCode, run.stderr).toBe(0);
    const m = parseAnnouncement(run.stdout.trim());
    expect(m.zsync?.fine?.retrievePath).toBe('.signatures/model/run12/sigdir.grib2.zsync');
    const fine = fineSignatureOf(m);
    expect('url' in fine && fine.url).toBe('http://h/pub/.signatures/model/run12/sigdir.grib2.zsync');
    const bytes = await readFile(join(sigs, 'model', 'run12', 'sigdir.grib2.zsync'));
    expect(m.zsync?.fine?.size).toBe(bytes.length);
    // Not beside the data: the fine file's URL header names the data absolutely, for plain zsync users.
    await expect(stat(`${path}.zsync`)).rejects.toThrow();
    expect(parseControlFile(bytes).urls).toEqual(['http://h/pub/model/run12/sigdir.grib2']);
  });

  it('--signature-dir outside --root needs --signature-url under --base-url', async () => {
    const path = await sparse('model/run12/elsewhere.grib2', 3 << 20);
    const sigs = join(tmp.path, 'signatures');
    const missing = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, '--signature-dir', sigs, path]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--signature-url/);
    const outside = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, '--signature-dir', sigs, '--signature-url', 'http://other/sigs', path]);
    expect(outside.exitCode).toBe(2);
    expect(outside.stderr).toMatch(/not under --base-url/);
    const lone = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, '--signature-url', 'http://h/pub/sigs', path]);
    expect(lone.exitCode).toBe(2);

    const run = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, '--signature-dir', sigs, '--signature-url', 'http://h/pub/zsync%20files/', path]);
    expect(run.exitCode, run.stderr).toBe(0);
    const m = parseAnnouncement(run.stdout.trim());
    const fine = fineSignatureOf(m);
    expect('url' in fine && fine.url).toBe('http://h/pub/zsync%20files/model/run12/elsewhere.grib2.zsync');
    expect((await stat(join(sigs, 'model', 'run12', 'elsewhere.grib2.zsync'))).size).toBe(m.zsync?.fine?.size);
  });

  it('--levels 1: one signature, no fine file, as before', async () => {
    const path = join(root, 'one.bin');
    await writeFile(path, seededBytes(3 << 20, 4));
    const run = await runCli(['announce', '--levels', '1', '--base-url', 'http://h/pub', '--root', root, path]);
    expect(run.exitCode, run.stderr).toBe(0);
    const m = parseAnnouncement(run.stdout.trim());
    expect(m.zsync?.kind).toBe('inline');
    expect(m.zsync?.fine).toBeUndefined();
    expect(m.zsync?.blockSize).toBe(4096);
    await expect(stat(`${path}.zsync`)).rejects.toThrow();
    const bad = await runCli(['announce', '--levels', '1', '--fine-block-size', '4k', '--base-url', 'http://h/pub', '--root', root, path]);
    expect(bad.exitCode).toBe(2);
  });

  it('--message-limit is the sending cap: a smaller one gives a coarser signature that fits it', async () => {
    const path = await sparse('limit.bin', 64 << 20);
    const run = await runCli(['announce', '--message-limit', '4k', '--base-url', 'http://h/pub', '--root', root, path]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(Buffer.byteLength(run.stdout.trim())).toBeLessThanOrEqual(4096);
    const help = await runCli(['announce', '--help']);
    expect(help.stdout).toMatch(/SENDING side/);
    const subscribeHelp = await runCli(['subscribe', '--help']);
    expect(subscribeHelp.stdout).toMatch(/RECEIVING side/);
  });

  it('inspect shows both levels: block sizes, record counts, where the fine file is and its size', async () => {
    const path = await sparse('model/run12/inspected.grib2', 24 << 20);
    const run = await runCli(['announce', '--base-url', 'http://h/pub', '--root', root, path]);
    expect(run.exitCode, run.stderr).toBe(0);
    const json = join(tmp.path, 'inspected.json');
    await writeFile(json, run.stdout);
    const fineBytes = (await stat(`${path}.zsync`)).size;
    const j = JSON.parse((await runCli(['inspect', '--json', json])).stdout);
    expect(j.signature).toMatchObject({ form: 'inline', length: 24 << 20 });
    expect(j.signature.blocks).toBe((24 << 20) / j.signature.blockSize);
    expect(j.signature.fine).toEqual({
      retrievePath: 'model/run12/inspected.grib2.zsync',
      url: 'http://h/pub/model/run12/inspected.grib2.zsync',
      size: fineBytes,
      blockSize: 2048,
      blocks: (24 << 20) / 2048,
      identity: { method: 'sha512', value: createHash('sha512').update(await readFile(`${path}.zsync`)).digest('base64') },
    });
    const text = (await runCli(['inspect', json])).stdout;
    expect(text).toMatch(new RegExp(`${j.signature.blocks} blocks of .*\\(coarse level\\)`));
    expect(text).toMatch(new RegExp(`fine level +${(24 << 20) / 2048} blocks of 2 KiB in http://h/pub/model/run12/inspected.grib2.zsync \\(${fineBytes} bytes`));

    // A fine level zpump does not take is shown with the reason.
    const o = JSON.parse(run.stdout);
    o.zsync.fine.blockSize = 3000;
    await writeFile(json, JSON.stringify(o));
    expect((await runCli(['inspect', json])).stdout).toMatch(/fine level +ignored: zsync.fine.blockSize must be a power of two/);
  });
});

