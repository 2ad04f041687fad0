// The watcher on its own, posting to a sink that records: a slowly written file is announced
// once, complete; scratch files are ignored; removals and renames become v03 fileOp messages.

import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Announcement } from '../../src/format/announcement.js';
import type { Sink } from '../../src/pump/bus/types.js';
import { isScratchName, watchTree } from '../../src/pump/watch.js';
import { seededBytes } from '../helpers/data.js';

let tmp: DirectoryResult;
let posted: Announcement[];
let stop: AbortController;
let watching: Promise<void>;
const sink: Sink = { where: 'memory', post: async (m) => void posted.push(m), close: async () => {} };

async function until(what: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out; posted: ${JSON.stringify(posted.map((m) => [m.relPath, m.size, m.fileOp]))}`);
    await sleep(25);
  }
}

beforeEach(async () => {
  tmp = await dir({ unsafeCleanup: true });
  posted = [];
  stop = new AbortController();
  await writeFile(join(tmp.path, 'existing.bin'), seededBytes(1 << 20, 1));
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  watching = watchTree(sink, {
    root: tmp.path, baseUrl: 'http://h/', engine: 'js', settleMs: 400, initial: false, exclude: [],
    signal: stop.signal, log: () => {}, onAnnounced: () => {}, onReady: ready,
  });
  await isReady;
});
afterEach(async () => {
  stop.abort();
  await watching;
  await tmp.cleanup();
});

describe('watchTree', () => {
  it('announces a slowly written file once, when it is complete', async () => {
    const path = join(tmp.path, 'slow.bin');
    for (let i = 0; i < 10; i++) {
      await appendFile(path, seededBytes(256 << 10, i));
      await sleep(100); // pauses shorter than the settle time
    }
    await until(() => posted.length > 0);
    await sleep(800);
    expect(posted.map((m) => [m.relPath, m.size])).toEqual([['slow.bin', 10 * (256 << 10)]]);
    expect(posted[0]!.zsync?.kind).toBe('inline');
  });

  it('ignores scratch files and does not announce what was there before it started', async () => {
    for (const name of ['a.zsync', '.big.bin.1a2b3c4d.zpump-tmp', '.x.zpump-lock', 'download.part', 'notes.txt~', '.tmp-upload']) {
      expect(isScratchName(name)).toBe(true);
      await writeFile(join(tmp.path, name), 'x');
    }
    await writeFile(join(tmp.path, 'real.txt'), 'y');
    await until(() => posted.length > 0);
    await sleep(800);
    expect(posted.map((m) => m.relPath)).toEqual(['real.txt']);
  });

  it('announces removals and renames as fileOp messages', async () => {
    await mkdir(join(tmp.path, 'moved'));
    await rename(join(tmp.path, 'existing.bin'), join(tmp.path, 'moved', 'renamed.bin'));
    await until(() => posted.length > 0);
    expect(posted[0]).toMatchObject({ relPath: 'moved/renamed.bin', fileOp: { rename: 'existing.bin' }, size: 1 << 20 });
    // Then the old name's removal, for subscribers (sr3) that do not move their copy.
    await until(() => posted.length > 1);
    expect(posted[1]).toMatchObject({ relPath: 'existing.bin', fileOp: { remove: '' } });
    await rm(join(tmp.path, 'moved', 'renamed.bin'));
    await until(() => posted.length > 2);
    expect(posted[2]).toMatchObject({ relPath: 'moved/renamed.bin', fileOp: { remove: '' } });
    await sleep(1600); // the removal must not also turn up as something else
    expect(posted).toHaveLength(3);
  });
});

describe('watchTree --initial', () => {
  it('also announces the files already there', async () => {
    const other = await dir({ unsafeCleanup: true });
    const seen: Announcement[] = [];
    const halt = new AbortController();
    try {
      await mkdir(join(other.path, 'sub'));
      await writeFile(join(other.path, 'sub', 'old.txt'), 'already here');
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      const run = watchTree({ where: 'memory', post: async (m) => void seen.push(m), close: async () => {} }, {
        root: other.path, baseUrl: 'http://h/', engine: 'js', settleMs: 200, initial: true, exclude: [],
        signal: halt.signal, log: () => {}, onAnnounced: () => {}, onReady: ready,
      });
      await isReady;
      const deadline = Date.now() + 10_000;
      while (seen.length === 0 && Date.now() < deadline) await sleep(25);
      halt.abort();
      await run;
      expect(seen.map((m) => m.relPath)).toEqual(['sub/old.txt']);
    } finally {
      halt.abort();
      await other.cleanup();
    }
  });
});
