// The embedded bus: a folder of message files. One message per *.json file, written under a dot
// name and renamed (so readers never see half a message), named so that names sort in
// publication order. A subscriber applies them in name order and removes each once applied;
// refused ones move to rejected/ with NAME.reason.txt beside them. Dot files are not messages.

import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromSystemError } from '../../errors.js';
import { renderAnnouncement, v03Time, type Announcement } from '../../format/announcement.js';
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

export function createSpoolSource(dir: string): Source {
  const rejected = join(dir, 'rejected');
  return {
    where: `spool:${dir}`,
    keepsRejected: true,
    async consume(handle: (d: Delivery) => Promise<void>, options: ConsumeOptions) {
      options.onReady?.();
      for (;;) {
        if (options.signal.aborted) return;
        let names: string[];
        try {
          names = (await readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
        } catch (error) {
          throw fromSystemError(error, 'cannot read the spool', dir);
        }
        // Up to `prefetch` messages in hand: the subscriber keeps those of one file in order and
        // skips an older one when a newer one for the same file is already waiting.
        const inHand = new Set<Promise<void>>();
        for (const name of names) {
          if (options.signal.aborted) break;
          if (inHand.size >= options.prefetch) await Promise.race(inHand);
          const path = join(dir, name);
          let body: Uint8Array;
          try {
            body = await readFile(path);
          } catch {
            continue; // taken by another subscriber or removed by hand since the listing
          }
          const done: Promise<void> = handle({
            body,
            id: name,
            ack: () => rm(path, { force: true }),
            async setAside(reason: string) {
              await mkdir(rejected, { recursive: true });
              await writeFileAtomically(join(rejected, `${name}.reason.txt`), `${reason}\n`);
              await rename(path, join(rejected, name)).catch(() => rm(path, { force: true }));
            },
          }).finally(() => inHand.delete(done));
          inHand.add(done);
        }
        await Promise.all(inHand);
        if (options.signal.aborted) return;
        if (options.once && names.length === 0) return;
        if (names.length === 0) await sleep(POLL_MS, undefined, { signal: options.signal }).catch(() => undefined);
      }
    },
  };
}
