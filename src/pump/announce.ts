// Publishing: announce a file (or its removal) on a sink. Used once per file by `announce` and
// for every settled change by `watch`.

import { setTimeout as sleep } from 'node:timers/promises';
import { isZpumpError } from '../errors.js';
import type { Announcement } from '../format/announcement.js';
import { backoffMs } from './backoff.js';
import type { Sink } from './bus/types.js';
import { buildFileMessage, type BuildOptions, type BuiltMessage } from './message.js';

export type PublishOptions = Omit<BuildOptions, 'path' | 'fileOp'>;

export interface Announced extends BuiltMessage {
  seconds: number;
}

export async function announceFile(sink: Sink, path: string, options: PublishOptions, fileOp?: Record<string, string>): Promise<Announced> {
  const started = performance.now();
  const built = await buildFileMessage({ ...options, path, ...(fileOp ? { fileOp } : {}) });
  await sink.post(built.message);
  return { ...built, seconds: Math.round(performance.now() - started) / 1000 };
}

/** Post, retrying forever with backoff: a watcher must not lose an announcement to a broker restart. */
export async function postPatiently(sink: Sink, message: Announcement, log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await sink.post(message);
      return;
    } catch (error) {
      if (signal?.aborted) throw error;
      // Only a bus that cannot be reached is waited for; a message the broker refused stays refused.
      if (isZpumpError(error) && (error.code === 'E_USAGE' || error.data.refused === true)) throw error;
      log(`cannot post ${message.relPath} to ${sink.where} yet (${error instanceof Error ? error.message : String(error)}); retrying`);
      await sleep(backoffMs(attempt), undefined, { signal }).catch(() => undefined);
    }
  }
}
