// The embedded bus: a folder of message files. One message per *.json file, written under a dot
// name and renamed (so readers never see half a message), named so that names sort in
// publication order. A subscriber applies them in name order and removes each once applied;
// refused ones move to rejected/ with NAME.reason.txt beside them. Dot files are not messages.
// Anyone who can write to the folder can drop entries in, so an entry is checked before it is read.

import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromSystemError } from '../../errors.js';
import { DEFAULT_MESSAGE_LIMIT, renderAnnouncement, v03Time, type Announcement } from '../../format/announcement.js';
import { writeFileAtomically } from '../../local/atomic-file.js';
import type { ConsumeOptions, Delivery, Sink, Source } from './types.js';

const POLL_MS = 250;
let sequence = 0;

export function spoolPathOf(spec: string): string {
  return spec.replace(/^spool:/, '');
}

export async function createSpoolSink(dir: string): Promise<Sink> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw fromSystemError(error, 'cannot make the spool folder', dir);
  }
  return {
    where: `spool:${dir}`,
    async post(message: Announcement) {
      // Time first so names from several publishers interleave by time; the sequence keeps one
      // publisher's messages of the same millisecond in order.
      const name = `${v03Time(Date.now())}-${String(process.pid).padStart(7, '0')}-${String(sequence++).padStart(9, '0')}.json`;
      // Under its dot-named temporary, a message is invisible to subscribers until complete.
      await writeFileAtomically(join(dir, name), `${renderAnnouncement(message)}\n`, { fsync: true });
    },
    async close() {},
  };
}

/** Reads a spool entry without trusting it: no symlink followed, no FIFO or device opened for
 *  reading (O_NONBLOCK keeps a FIFO without writer from blocking the open), the size checked with
 *  fstat before a byte is read, and at most limit+1 bytes read in case it grows meanwhile.
 *  Resolves with the body, with a reason to refuse it, or with undefined when it is gone. */
async function readEntry(path: string, limit: number): Promise<{ body: Uint8Array } | { refuse: string } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined; // taken by another subscriber or removed by hand since the listing
    if (code === 'ELOOP') return { refuse: 'a spool entry must be a regular file, not a symbolic link' };
    return { refuse: `cannot open the spool entry (${code ?? String(error)})` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { refuse: `a spool entry must be a regular file, not ${kindOf(st)}` };
    if (st.size > limit) return { refuse: `${st.size} bytes, over the ${limit}-byte message limit (not read)` };
    const buffer = Buffer.alloc(Math.min(st.size, limit) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) return { refuse: `grew over the ${limit}-byte message limit while being read` };
    return { body: buffer.subarray(0, length) };
  } catch (error) {
    return { refuse: `cannot read the spool entry (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}

export function createSpoolSource(dir: string): Source {
  const rejected = join(dir, 'rejected');
  /** Moves an entry (of any kind) to rejected/ with its reason; false when it cannot be moved. */
  const moveAside = async (name: string, reason: string): Promise<boolean> => {
    const path = join(dir, name);
    await mkdir(rejected, { recursive: true });
    // A rejected/ planted as a symlink would take entries and reason files anywhere.
    if (!(await lstat(rejected)).isDirectory()) return false;
    // A name already taken in rejected/ (a directory cannot replace one) gets a unique suffix.
    for (const kept of [name, `${name}.${Date.now()}-${process.pid}`]) {
      try {
        await rename(path, join(rejected, kept));
        await writeFileAtomically(join(rejected, `${kept}.reason.txt`), `${reason}\n`);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true; // gone already
      }
    }
    return false;
  };
  return {
    where: `spool:${dir}`,
    keepsRejected: true,
    async consume(handle: (d: Delivery) => Promise<void>, options: ConsumeOptions) {
      const limit = options.messageLimit ?? DEFAULT_MESSAGE_LIMIT;
      const refuse = async (name: string, reason: string): Promise<void> => {
        if (options.refused) options.refused(name, reason);
        else options.log(`refused ${name}: ${reason}`);
        if (!(await moveAside(name, reason).catch(() => false))) options.log(`cannot move ${name} to ${rejected}: skipped from now on`);
      };
      // Entries handed over (or refused) that are still listed: one that could not be removed or
      // moved aside is never handed over twice, so neither --once nor polling can loop on it.
      const passed = new Set<string>();
      const stuck = new Set<string>();
      options.onReady?.();
      for (;;) {
        if (options.signal.aborted) return;
        let names: string[];
        try {
          names = (await readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
        } catch (error) {
          throw fromSystemError(error, 'cannot read the spool', dir);
        }
        const listed = new Set(names);
        for (const name of passed) {
          if (!listed.has(name)) passed.delete(name);
          else if (!stuck.has(name)) {
            stuck.add(name);
            options.log(`${name} stays in the spool after being handled (cannot remove or move it): skipped from now on`);
          }
        }
        for (const name of stuck) if (!listed.has(name)) stuck.delete(name);
        const fresh = names.filter((n) => !passed.has(n));
        // Up to `prefetch` messages in hand: the subscriber keeps those of one file in order and
        // skips an older one when a newer one for the same file is already waiting.
        const inHand = new Set<Promise<void>>();
        for (const name of fresh) {
          if (options.signal.aborted) break;
          if (inHand.size >= options.prefetch) await Promise.race(inHand);
          passed.add(name);
          const path = join(dir, name);
          const entry = await readEntry(path, limit);
          if (entry === undefined) continue;
          if ('refuse' in entry) {
            await refuse(name, entry.refuse);
            continue;
          }
          const done: Promise<void> = handle({
            body: entry.body,
            id: name,
            ack: () => rm(path, { force: true }),
            async setAside(reason: string) {
              if (!(await moveAside(name, reason))) await rm(path, { force: true });
            },
          }).finally(() => inHand.delete(done));
          inHand.add(done);
        }
        await Promise.all(inHand);
        if (options.signal.aborted) return;
        if (fresh.length > 0) continue;
        if (options.once) return;
        await sleep(POLL_MS, undefined, { signal: options.signal }).catch(() => undefined);
      }
    },
  };
}
