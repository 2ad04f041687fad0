// watch with two-level signatures: a file's fine signature (FILE.zsync, beside it or under
// --signature-dir) is written before its message, moves when the file is renamed, goes when the
// file is removed, and is never announced as data.

import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fineSignatureOf, type Announcement } from '../../src/format/announcement.js';
import { parseControlFile } from '../../src/format/control-file.js';
import type { Sink } from '../../src/pump/bus/types.js';
import { watchTree } from '../../src/pump/watch.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
let posted: Array<{ message: Announcement; fineThere: boolean }>;
let stop: AbortController;
let watching: Promise<void>;

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

// Records each message with whether its fine signature was already on disk when it was posted
// (baseUrl stands for root here, so the fine retrievePath is a path under root).
const sink = (root: string): Sink => ({
  where: 'memory',
  close: async () => {},
  post: async (message) => {
    const fine = fineSignatureOf(message);
    posted.push({ message, fineThere: 'url' in fine ? await exists(join(root, ...fine.retrievePath.split('/'))) : false });
  },
});

async function until(what: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out; posted: ${JSON.stringify(posted.map((p) => [p.message.relPath, p.message.fileOp]))}`);
    await sleep(25);
  }
}

async function startWatching(root: string, extra: { signatureDir?: string } = {}): Promise<void> {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  watching = watchTree(sink(root), {
    root, baseUrl: 'http://h/pub', settleMs: 300, initial: false, exclude: [], ...extra,
    signal: stop.signal, log: () => {}, onAnnounced: () => {}, onReady: ready,
  });
  await isReady;
}

beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  posted = [];
  stop = new AbortController();
});
afterEach(async () => {
  stop.abort();
  await watching;
  await tmp.cleanup();
});

describe('watch: fine signatures follow their files', () => {
  it('beside the file: written before the message, renamed and removed with it, never announced', async () => {
    const root = tmp.path;
    await mkdir(join(root, 'a'));
    await startWatching(root);
    const first = join(root, 'a', 'data.bin');
    await writeFile(first, seededBytes(6 << 20, 1));
    await until(() => posted.length === 1);
    expect(posted[0]!.message.relPath).toBe('a/data.bin');
    expect(posted[0]!.fineThere).toBe(true);
    expect(parseControlFile(await readFile(`${first}.zsync`)).length).toBe(6 << 20);

    const second = join(root, 'a', 'moved.bin');
    await rename(first, second);
    await until(() => posted.length === 3);
    expect(posted.map((p) => [p.message.relPath, p.message.fileOp])).toEqual([
      ['a/data.bin', undefined],
      ['a/moved.bin', { rename: 'a/data.bin' }],
      ['a/data.bin', { remove: '' }],
    ]);
    expect(posted[1]!.fineThere).toBe(true);
    expect(await exists(`${first}.zsync`)).toBe(false);
    expect(parseControlFile(await readFile(`${second}.zsync`)).filename).toBe('moved.bin');

    await rm(second);
    await until(() => posted.length === 4);
    expect(posted[3]!.message).toMatchObject({ relPath: 'a/moved.bin', fileOp: { remove: '' } });
    expect(await exists(`${second}.zsync`)).toBe(false);
    await sleep(700);
    // No message ever named a signature file as data.
    expect(posted.filter((p) => p.message.relPath.endsWith('.zsync'))).toEqual([]);
  });

  it('under --signature-dir inside the tree: the same, and the folder is not announced', async () => {
    const root = tmp.path;
    const sigs = join(root, '.sigs');
    await startWatching(root, { signatureDir: sigs });
    const first = join(root, 'x.bin');
    await writeFile(first, seededBytes(5 << 20, 2));
    await until(() => posted.length === 1);
    expect(posted[0]!.fineThere).toBe(true);
    expect(posted[0]!.message.zsync?.fine?.retrievePath).toBe('.sigs/x.bin.zsync');
    expect(await exists(`${first}.zsync`)).toBe(false);

    await rename(first, join(root, 'y.bin'));
    await until(() => posted.length === 3);
    expect(await exists(join(sigs, 'x.bin.zsync'))).toBe(false);
    expect(await exists(join(sigs, 'y.bin.zsync'))).toBe(true);
    await rm(join(root, 'y.bin'));
    await until(() => posted.length === 4);
    expect(await exists(join(sigs, 'y.bin.zsync'))).toBe(false);
    await sleep(700);
    expect(posted.map((p) => p.message.relPath)).toEqual(['x.bin', 'y.bin', 'x.bin', 'y.bin']);
  });
});
