// The 4 GiB + 12 KiB sparse file of issue 10 (zeros with 64 KiB of random data at the start), synced
// by the js engine from a copy with 5 bytes patched at offset 5000: before the seed-scan work every
// window of zeros walked the zero blocks' chain (minutes); now it is a scan at rolling speed on
// every core. Sparse files keep the disk use small: the output keeps its holes (blocks of zeros are
// not written into the new, zero-filled temporary), which the test checks too.

import { createHash } from 'node:crypto';
import { closeSync, openSync, statSync, writeSync, ftruncateSync, readSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockRecordWriter } from '../../src/engine/block-records.js';
import { createMd4 } from '../../src/engine/md4.js';
import { renderControlFile } from '../../src/format/control-file.js';
import { zsyncmakeHashLengths } from '../../src/format/hash-lengths.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';

const B = 64 * 1024;
const LENGTH = 4 * 2 ** 30 + 12 * 1024;

async function recordOf(block: Uint8Array, hashLengths: ReturnType<typeof zsyncmakeHashLengths>): Promise<Uint8Array> {
  const out = new Uint8Array(hashLengths.rsumBytes + hashLengths.checksumBytes);
  const w = new BlockRecordWriter(await createMd4(), B, hashLengths, out, 0);
  w.update(block);
  w.finish();
  return out;
}

function sparseFile(path: string, head: Uint8Array): void {
  const fd = openSync(path, 'w');
  writeSync(fd, head, 0, head.length, 0);
  ftruncateSync(fd, LENGTH);
  closeSync(fd);
}

describe('a 4 GiB sparse file (zeros after 64 KiB of data), one changed block', () => {
  let dir: string;
  const head = seededBytes(B, 1);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zpump-sparse-'));
    sparseFile(join(dir, 'new.bin'), head);
    const patched = head.slice();
    patched.set([1, 2, 3, 4, 5], 5000);
    sparseFile(join(dir, 'old.bin'), patched);
    // The signature, built without reading 4 GiB: one record for the data, one for every zero
    // block (the short last block is zeros too, padded with zeros like its record).
    const hashLengths = zsyncmakeHashLengths(LENGTH, B);
    const recLen = hashLengths.rsumBytes + hashLengths.checksumBytes;
    const count = Math.ceil(LENGTH / B);
    const records = new Uint8Array(count * recLen);
    records.set(await recordOf(head, hashLengths), 0);
    const zero = await recordOf(new Uint8Array(B), hashLengths);
    for (let i = 1; i < count; i++) records.set(zero, i * recLen);
    const sha1 = createHash('sha1').update(head);
    const zeros = new Uint8Array(16 << 20);
    for (let left = LENGTH - B; left > 0; left -= zeros.length) sha1.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    const control = renderControlFile({ zsyncVersion: '0.6.2', filename: 'new.bin', blockSize: B, length: LENGTH, hashLengths, urls: ['new.bin'], sha1: sha1.digest('hex'), extraHeaders: [], records });
    await writeFile(join(dir, 'new.zsync'), control);
  }, 120_000);
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('syncs with the js engine, fetching only the changed block, and stays sparse', async () => {
    const run = await runCli(['sync', '--json', '--engine', 'js', join(dir, 'new.zsync'), join(dir, 'old.bin')]);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.verified).toBe(true);
    expect(result.bytesFetched).toBe(B);
    const st = statSync(join(dir, 'old.bin'));
    expect(st.size).toBe(LENGTH);
    expect(st.blocks * 512).toBeLessThan(64 << 20);
    const fd = openSync(join(dir, 'old.bin'), 'r');
    const first = new Uint8Array(B);
    readSync(fd, first, 0, B, 0);
    closeSync(fd);
    expect(Buffer.from(first).equals(Buffer.from(head))).toBe(true);
  }, 180_000);
});
