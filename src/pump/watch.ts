// The watcher: every settled change under a folder becomes an announcement. Files are announced
// once their size and mtime have stopped changing (large files are written slowly); zpump's own
// temporaries, lock files, .zsync files and editors' scratch files are ignored. A removal waits a
// moment: if the same inode shows up under another name, it is announced as a rename (v03
// fileOp.rename, then a removal of the old relPath for sr3's sake) so subscribers move their copy
// instead of fetching it again.

import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Stats } from 'node:fs';
import type { Sink } from './bus/types.js';
import { announceFile, postPatiently, type Announced, type PublishOptions } from './announce.js';
import { buildRemoveMessage, relPathOf } from './message.js';
import { sidecarsOf, signatureDirOf } from './two-level.js';
import { isZpumpError } from '../errors.js';

export interface WatchOptions extends PublishOptions {
  /** Quiet time before a file counts as written (ms). */
  settleMs: number;
  /** Also announce the files already there when watching starts. */
  initial: boolean;
  /** Folders under root never to announce (a spool inside the tree, for instance). */
  exclude: string[];
  signal: AbortSignal;
  log: (line: string) => void;
  onAnnounced: (path: string, result: Announced | { removed: true }) => void;
  /** Called once chokidar has scanned the tree. */
  onReady?: () => void;
}

export function isScratchName(name: string): boolean {
  return (
    name.endsWith('.zsync') ||
    name.endsWith('.zpump-tmp') ||
    name.endsWith('.zpump-lock') ||
    name.endsWith('~') ||
    /\.(swp|swx|part|partial|tmp|crdownload)$/i.test(name) ||
    (name.startsWith('.') && /tmp|temp/i.test(name))
  );
}

export async function watchTree(sink: Sink, options: WatchOptions): Promise<void> {
  const { watch } = await import('chokidar');
  const root = resolve(options.root);
  const excluded = options.exclude.map((p) => resolve(p));
  const inside = (p: string, dir: string): boolean => p === dir || p.startsWith(dir + sep);
  const ignored = (path: string): boolean => {
    const abs = resolve(path);
    return abs !== root && (isScratchName(basename(abs)) || excluded.some((dir) => inside(abs, dir)));
  };
  const inodes = new Map<string, number>(); // path → inode, to recognise renames
  const leaving = new Map<number, { path: string; timer: NodeJS.Timeout }>(); // inode → path removed a moment ago
  let ready = false;
  // Inodes of what is there already, so that renaming an old file is recognised too.
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (!entry.isFile() || ignored(path)) continue;
    const st = await stat(path).catch(() => undefined);
    if (st) inodes.set(path, st.ino);
  }

  // One file at a time: signature making is CPU-bound, and order per file must be kept.
  const queue: Array<() => Promise<void>> = [];
  const queued = new Set<string>();
  let running = false;
  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    while (queue.length > 0 && !options.signal.aborted) await queue.shift()!();
    running = false;
  };
  const enqueue = (key: string, task: () => Promise<void>): void => {
    if (queued.has(key)) return; // already waiting: it will read the file as it is then
    queued.add(key);
    queue.push(async () => {
      queued.delete(key);
      // The key is the path, a NUL, and the kind of announcement: only the path is for the log.
      const path = key.split('\0')[0]!;
      await task().catch((error: unknown) => options.log(`${relative(root, path) || path}: ${error instanceof Error ? error.message : String(error)}`));
    });
    void pump();
  };

  // A file's signatures (FILE.zsync, FILE.coarse.zsync, beside it or under --signature-dir) go
  // where the file goes: a renamed file's stay valid under its new name, a removed file's describe
  // nothing any more. They are .zsync names, so the watcher never announces them as data.
  const sidecarPlace = options.signatureDir !== undefined ? { signatureDir: signatureDirOf(root, options.baseUrl, options.signatureDir, options.signatureUrl) } : {};
  const sidecars = (path: string): string[] => sidecarsOf(path, relPathOf(root, path), sidecarPlace);
  const moveSidecars = async (from: string, to: string): Promise<void> => {
    const targets = sidecars(to);
    await Promise.all(sidecars(from).map(async (old, i) => {
      await mkdir(dirname(targets[i]!), { recursive: true }).catch(() => undefined);
      await rename(old, targets[i]!).catch(() => undefined); // none there: nothing to move
    }));
  };
  const removeSidecars = async (path: string): Promise<void> => {
    await Promise.all(sidecars(path).map((p) => rm(p, { force: true }).catch((error: unknown) => options.log(`cannot remove ${p}: ${error instanceof Error ? error.message : String(error)}`))));
  };

  // The sink as the watcher uses it: a post waits out broker outages instead of failing.
  const patient: Sink = { where: sink.where, close: () => sink.close(), post: (m) => postPatiently(sink, m, options.log, options.signal) };
  // rel update (WIS2): a file announced before changed; new files and renames are canonical.
  const announce = (path: string, fileOp?: Record<string, string>, rel?: 'update'): void => {
    enqueue(`${path}\0${fileOp ? 'rename' : ''}`, async () => {
      if (fileOp?.rename !== undefined) await moveSidecars(join(root, ...fileOp.rename.split('/')), path);
      for (let attempt = 0; ; attempt++) {
        try {
          const built = await announceFile(patient, path, rel ? { ...options, rel } : options, fileOp);
          options.onAnnounced(path, built);
          // sr3 subscribers look a relative old name up beside the new one, miss it and keep their
          // old copy: a removal of the old relPath right after makes them drop it. zpump
          // subscribers have moved the file by then and find nothing to remove.
          if (fileOp?.rename !== undefined) {
            const old = join(root, ...fileOp.rename.split('/'));
            await patient.post(buildRemoveMessage(root, old, options.baseUrl, options));
            options.onAnnounced(old, { removed: true });
          }
          return;
        } catch (error) {
          // Rewritten while we read it: wait for it to settle again.
          if (isZpumpError(error) && error.data?.retry === true && attempt < 20) {
            await new Promise((r) => setTimeout(r, options.settleMs));
            continue;
          }
          if (isZpumpError(error) && error.code === 'E_IO' && /ENOENT|no such file/i.test(error.message)) return; // gone again
          throw error;
        }
      }
    });
  };

  const onFile = (path: string, stats?: Stats, rel?: 'update'): void => {
    if (stats) {
      const pending = leaving.get(stats.ino);
      if (pending && pending.path !== path) {
        clearTimeout(pending.timer);
        leaving.delete(stats.ino);
        inodes.set(path, stats.ino);
        if (ready) announce(path, { rename: relPathOf(root, pending.path) });
        return;
      }
      inodes.set(path, stats.ino);
    }
    if (ready) announce(path, undefined, rel);
  };

  const onUnlink = (path: string): void => {
    const ino = inodes.get(path);
    inodes.delete(path);
    const post = () =>
      enqueue(`${path}\0remove`, async () => {
        await removeSidecars(path);
        await patient.post(buildRemoveMessage(root, path, options.baseUrl, options));
        options.onAnnounced(path, { removed: true });
      });
    if (ino === undefined) return post();
    // The new name shows up only once it has settled: wait that long, plus a margin.
    leaving.set(ino, { path, timer: setTimeout(() => (leaving.delete(ino), post()), options.settleMs + 1000) });
  };

  const watcher = watch(root, {
    ignored,
    ignoreInitial: !options.initial,
    alwaysStat: true,
    awaitWriteFinish: { stabilityThreshold: options.settleMs, pollInterval: Math.max(20, Math.min(100, options.settleMs / 4)) },
  });
  watcher.on('add', onFile);
  watcher.on('change', (path, stats) => onFile(path, stats, 'update'));
  watcher.on('unlink', onUnlink);
  watcher.on('error', (error) => options.log(`watching ${root}: ${error instanceof Error ? error.message : String(error)}`));
  ready = options.initial;
  await new Promise<void>((r) => watcher.once('ready', () => r()));
  ready = true;
  options.onReady?.();
  await new Promise<void>((r) => (options.signal.aborted ? r() : options.signal.addEventListener('abort', () => r(), { once: true })));
  await watcher.close();
  for (const { timer } of leaving.values()) clearTimeout(timer);
}
