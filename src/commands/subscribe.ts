// zpump subscribe SOURCE --dir DIR : apply announcements to a local tree.

import { join, resolve } from 'node:path';
import type { EngineChoice } from '../backends/types.js';
import { ensureDirectory } from '../local/directory.js';
import { openSource } from '../pump/bus/open.js';
import { DEFAULT_SCHEMES } from '../pump/message.js';
import { Subscriber, describeReport } from '../pump/subscribe.js';
import { transportFrom, type TransportFlags } from './transport-flags.js';
import { formatBytes, printJson, say, warn } from './output.js';

export interface SubscribeFlags extends TransportFlags {
  dir: string;
  once: boolean;
  queue?: string;
  subtopic: string;
  exchange: string;
  allowFile: boolean;
  acceptUnverified: boolean;
  engine: EngineChoice;
  json: boolean;
  retries: number;
  retryDelay: number;
  messageLimit: number;
  prefetch: number;
  rejected?: string;
  shared?: boolean;
  instance?: number;
  topic?: string;
  renameStrip?: string;
}

const STOP_GRACE_MS = 3000;

export async function runSubscribe(spec: string, flags: SubscribeFlags): Promise<number> {
  const transport = await transportFrom(flags);
  const dir = resolve(flags.dir);
  await ensureDirectory(dir, '--dir');
  const source = await openSource(spec, { exchange: flags.exchange, queue: flags.queue, subtopic: flags.subtopic, dir, shared: flags.shared, instance: flags.instance, topic: flags.topic });
  // SIGTERM/SIGINT abort one signal that every wait listens to: the bus (ConsumeOptions.signal),
  // the per-file lock, the retry backoff. A transfer still running after STOP_GRACE_MS is cut by
  // exiting; its temporary is removed by the next run.
  const stop = new AbortController();
  const subscriber = new Subscriber({
    dir,
    signal: stop.signal,
    acceptUnverified: flags.acceptUnverified === true,
    schemes: flags.allowFile ? [...DEFAULT_SCHEMES, 'file'] : DEFAULT_SCHEMES,
    messageLimit: flags.messageLimit,
    engine: flags.engine,
    transport,
    retries: flags.retries,
    retryDelayMs: flags.retryDelay * 1000,
    renameStrip: flags.renameStrip,
    rejectedDir: flags.rejected ?? join(dir, '.zpump', 'rejected'),
    report: (r) => (flags.json ? printJson(r) : say(describeReport(r, formatBytes))),
    log: warn,
  });
  const onSignal = (name: NodeJS.Signals) => {
    const code = name === 'SIGINT' ? 130 : 143;
    if (stop.signal.aborted) process.exit(code); // a second signal: now
    warn(`${name}: stopping (messages in hand stay queued for the next run)`);
    stop.abort();
    setTimeout(() => {
      warn(`still busy ${STOP_GRACE_MS / 1000} s after ${name}: exiting now`);
      process.exit(code);
    }, STOP_GRACE_MS).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const onReady = () => warn(`ready: applying announcements from ${source.where} to ${dir}`);
  await subscriber.run(source, { once: flags.once, prefetch: flags.prefetch, signal: stop.signal, onReady });
  if (flags.once) warn(`${subscriber.applied} applied, ${subscriber.setAside} set aside`);
  // For cron and make: a message that could not be applied is a failure worth noticing.
  return subscriber.setAside > 0 ? 1 : 0;
}
