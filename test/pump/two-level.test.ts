// The publisher's two-level signatures: the fine .zsync is zsyncmake's own file at that block
// size, the coarse one is the smallest that lets the whole message fit 8 KiB, both come from one
// read of the file with the sha512 identity, and the fine file is in place before the message
// exists. Plus --levels 1 as it always was.

import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fineSignatureOf, parseAnnouncement, renderAnnouncement, type Announcement } from '../../src/format/announcement.js';
import { parseControlFile, type ControlFile } from '../../src/format/control-file.js';
import { digestCounter } from '../../src/local/file-digest.js';
import { readCounter } from '../../src/local/signature-reader.js';
import { buildFileMessage } from '../../src/pump/message.js';
import { planLevels } from '../../src/pump/two-level.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';

const MTIME = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
let tmp: DirectoryResult;
beforeAll(async () => { tmp = await dir({ unsafeCleanup: true }); });
afterAll(async () => { await tmp.cleanup(); });

const coarseOf = (m: Announcement): ControlFile => {
  if (m.zsync?.kind !== 'inline') throw new Error(`expected an inline coarse signature, got ${m.zsync?.kind}`);
  return parseControlFile(m.zsync.bytes);
};

/** A file of `size` bytes with seeded data at a few places (sparse elsewhere), mtime fixed. */
async function sparseFile(name: string, size: number, seed: number): Promise<string> {
  const path = join(tmp.path, name);
  const fh = await open(path, 'w');
  await fh.truncate(size);
  for (const at of [0, Math.floor(size / 3), size - 5000].filter((o) => o >= 0)) await fh.write(seededBytes(Math.min(5000, size - at), seed + at), 0, Math.min(5000, size - at), at);
  await fh.close();
  await utimes(path, MTIME, MTIME);
  return path;
}

describe('two levels: what announce writes', () => {
  it('reads the file once for both levels, the SHA-1 and the identity; the fine file is in place and current', async () => {
    const path = join(tmp.path, 'one-read.bin');
    const data = seededBytes(40 << 20, 5); // above the size where hashing goes to worker threads
    await writeFile(path, data);
    const before = { ...readCounter };
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/pub' });
    expect(readCounter.files - before.files).toBe(1);
    expect(readCounter.bytes - before.bytes).toBe(data.length);

    const m = parseAnnouncement(renderAnnouncement(built.message));
    expect(m.identity.value).toBe(createHash('sha512').update(data).digest('base64'));
    const coarse = coarseOf(m);
    expect(m.zsync!.blockSize).toBe(coarse.blockSize);
    const finePath = `${path}.zsync`;
    expect(built.zsyncPath).toBe(finePath);
    const fineBytes = await readFile(finePath);
    const fine = parseControlFile(fineBytes);
    expect(fine.blockSize).toBe(2048);
    expect(m.zsync!.fine).toEqual({ retrievePath: 'one-read.bin.zsync', size: fineBytes.length, blockSize: 2048, identity: { method: 'sha512', value: createHash('sha512').update(fineBytes).digest('base64') } });
    // The staleness rule: both levels describe the same version of the data.
    const sha1 = createHash('sha1').update(data).digest('hex');
    expect([coarse.sha1, fine.sha1, coarse.length, fine.length]).toEqual([sha1, sha1, data.length, data.length]);
    expect(coarse.blockSize).toBeGreaterThan(fine.blockSize);
    const usable = fineSignatureOf(m);
    expect('url' in usable && usable.url).toBe('http://h/pub/one-read.bin.zsync');
  });

  it('the coarse block size is the smallest power of two that lets the message fit', async () => {
    const path = join(tmp.path, 'smallest.bin');
    await writeFile(path, seededBytes(24 << 20, 8));
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/pub' });
    const bytes = Buffer.byteLength(renderAnnouncement(built.message));
    expect(bytes).toBeLessThanOrEqual(8192);
    const coarse = coarseOf(built.message);
    // Half that block size would not have fitted.
    const half = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/pub', blockSize: coarse.blockSize / 2, messageLimit: 1 << 20 });
    expect(Buffer.byteLength(renderAnnouncement(half.message))).toBeGreaterThan(8192);
  });

  it('one level when the signature at the fine block size already fits inline (no fine file)', async () => {
    const path = join(tmp.path, 'fits.bin');
    await writeFile(path, seededBytes(1 << 20, 9));
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/' });
    expect(built.message.zsync).toMatchObject({ kind: 'inline', blockSize: 2048 });
    expect(built.message.zsync!.fine).toBeUndefined();
    await expect(stat(`${path}.zsync`)).rejects.toThrow();
  });

  it('--levels 1 is the one-level announcement it always was, from one read with the js engine', async () => {
    const path = join(tmp.path, 'one-level.bin');
    const data = seededBytes(3 << 20, 7);
    await writeFile(path, data);
    const before = { reads: readCounter.files, digests: digestCounter.files };
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/', levels: 1, engine: 'js' });
    expect([readCounter.files - before.reads, digestCounter.files - before.digests]).toEqual([1, 0]);
    expect(built.message.identity.value).toBe(createHash('sha512').update(data).digest('base64'));
    expect(built.signature).toBe('inline');
    expect(built.message.zsync!.fine).toBeUndefined();
    expect(built.levels).toBeUndefined();
    // Today's auto block size: the smallest >= 4 KiB whose signature fits 48 KiB.
    expect(coarseOf(built.message).blockSize).toBe(4096);
    await expect(stat(`${path}.zsync`)).rejects.toThrow();
    const ref = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/', levels: 1, blockSize: 1024, inlineLimit: 4096, engine: 'js' });
    expect(ref.message.zsync).toMatchObject({ kind: 'reference', retrievePath: 'one-level.bin.zsync' });
    expect(ref.message.zsync!.fine).toBeUndefined();
  });

  it('spec 0.8 signatures on both levels with --strong-hash', async () => {
    const path = join(tmp.path, 'spec08.bin');
    await writeFile(path, seededBytes(8 << 20, 3));
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/', strongHash: 'SHA-224' });
    const coarse = coarseOf(built.message);
    const fine = parseControlFile(await readFile(`${path}.zsync`));
    expect([coarse.strongHash, fine.strongHash]).toEqual(['SHA-224', 'SHA-224']);
    expect(coarse.fileHash).toEqual(fine.fileHash);
    expect(Buffer.byteLength(renderAnnouncement(built.message))).toBeLessThanOrEqual(8192);
  });
});

describe.skipIf(!requireTool('zsyncmake', 'zsync'))('two levels: the signatures are zsyncmake 0.6.2\'s own files', () => {
  async function zsyncmake(path: string, blockSize: number): Promise<Buffer> {
    const name = path.slice(tmp.path.length + 1);
    const out = join(tmp.path, `${name}.${blockSize}.c.zsync`);
    await execa('zsyncmake', ['-b', String(blockSize), '-u', name, '-o', out, name], { cwd: tmp.path });
    return readFile(out);
  }

  it.each([
    ['40 MiB random (hashing threads), default fine blocks', 40 << 20, undefined, 2048],
    ['120 MB sparse (over 100 000 000 bytes: 4 KiB fine blocks)', 120_000_000, undefined, 4096],
    ['9 MiB + 17 bytes, --fine-block-size 8k', (9 << 20) + 17, 8192, 8192],
  ])('%s', async (label, size, fineBlockSize, expected) => {
    const name = `zm-${size}.bin`;
    const path = size > 100_000_000 ? await sparseFile(name, size, size) : join(tmp.path, name);
    if (size <= 100_000_000) {
      await writeFile(path, seededBytes(size, size));
      await utimes(path, MTIME, MTIME);
    }
    const built = await buildFileMessage({ path, root: tmp.path, baseUrl: 'http://h/', ...(fineBlockSize ? { fineBlockSize } : {}) });
    const fine = await readFile(`${path}.zsync`);
    expect(parseControlFile(fine).blockSize, label).toBe(expected);
    expect(fine.equals(await zsyncmake(path, expected)), `${label}: the fine .zsync differs from zsyncmake's`).toBe(true);
    // The inline coarse signature is a standard .zsync too.
    const coarse = built.message.zsync?.kind === 'inline' ? Buffer.from(built.message.zsync.bytes) : Buffer.alloc(0);
    expect(coarse.equals(await zsyncmake(path, parseControlFile(coarse).blockSize)), `${label}: the coarse .zsync differs from zsyncmake's`).toBe(true);
  });
});

describe('two levels: every message fits 8 192 bytes, 1 MiB to 64 GiB', () => {
  const GiB = 2 ** 30;
  const sizes = [1 << 20, (3 << 20) + 17, 99_999_999, 100_000_000, 256 << 20, GiB, 4 * GiB + 1, 16 * GiB, 40 * GiB + 12345, 64 * GiB];
  const relPath = `model/run12/${'x'.repeat(80)}.grib2`;
  const templates: Array<[string, Announcement]> = [
    ['v03', { pubTime: '', baseUrl: 'https://data.example.org/some/longer/base/path', relPath, size: 0, mtime: '20260102T030405', identity: { method: 'sha512', value: '' }, extra: {} }],
    ['v03 rename', { pubTime: '', baseUrl: 'https://data.example.org/pub', relPath, size: 0, mtime: '20260102T030405', identity: { method: 'sha512', value: '' }, fileOp: { rename: `model/run11/${'y'.repeat(80)}.grib2` }, extra: {} }],
    ['wis2', { pubTime: '', baseUrl: 'https://data.example.org/pub', relPath, size: 0, mtime: '20260102T030405', identity: { method: 'sha512', value: '' }, wnm: { dataId: `xx-centre/data/core/${relPath}`, rel: 'canonical', geometry: { type: 'Point', coordinates: [6.15, 46.22] } }, extra: {} }],
  ];

  for (const [format, template] of templates) {
    it.each(sizes)(`${format}: %i bytes, as planned by the builder`, (size) => {
      const message = { ...template, size };
      const plan = planLevels(message, `/srv/pub/${relPath}`, size, MTIME.getTime() / 1000, { messageLimit: 8192 });
      const digest = createHash('sha512').update(String(size)).digest('base64');
      const fine = plan.fine ? { retrievePath: plan.fine.retrievePath, size: plan.fine.bytes, blockSize: plan.fine.blockSize, identity: { method: 'sha512', value: digest } } : undefined;
      const zsync: Announcement['zsync'] = plan.coarse.inline
        ? { kind: 'inline', bytes: new Uint8Array(plan.coarse.bytes), blockSize: plan.coarse.blockSize, ...(fine ? { fine } : {}) }
        : { kind: 'reference', retrievePath: plan.coarse.retrievePath!, size: plan.coarse.bytes, identity: { method: 'sha512', value: digest }, blockSize: plan.coarse.blockSize, ...(fine ? { fine } : {}) };
      const text = renderAnnouncement({ ...message, pubTime: '20260102T030405.123', identity: { method: 'sha512', value: digest }, zsync });
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(8192);
      expect(plan.fine?.blockSize ?? plan.coarse.blockSize).toBe(size < 100_000_000 ? 2048 : 4096);
      if (plan.fine) expect(plan.coarse.blockSize).toBeGreaterThan(plan.fine.blockSize);
      // 64 MiB blocks cannot fit 64 GiB's coarse records in 8 KiB: the coarse level goes by reference.
      if (size <= 16 * GiB) expect(plan.coarse.inline).toBe(true);
      if (size === 64 * GiB) expect(plan.coarse.inline).toBe(false);
    });
  }
});
