// JSON lines on stdout (announce's default sink) and on stdin (a source for pipes and tests).

import { createInterface } from 'node:readline';
import { renderAnnouncement, type Announcement } from '../../format/announcement.js';
import type { ConsumeOptions, Delivery, Sink, Source } from './types.js';

export function createStdoutSink(): Sink {
  return {
    where: 'stdout',
    async post(message: Announcement) {
      const line = `${renderAnnouncement(message)}\n`;
      if (!process.stdout.write(line)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    },
    async close() {},
  };
}

/** Each non-blank line is one message. Nothing to acknowledge: a refused line is only logged. */
export function createStdinSource(): Source {
  return {
    where: 'stdin',
    async consume(handle: (d: Delivery) => Promise<void>, options: ConsumeOptions) {
      const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
      options.onReady?.();
      let n = 0;
      for await (const line of lines) {
        if (options.signal.aborted) break;
        n++;
        if (line.trim() === '') continue;
        await handle({ body: new TextEncoder().encode(line), id: `stdin line ${n}`, ack: async () => {}, setAside: async () => {} });
      }
      lines.close();
    },
  };
}
