// zpump watch DIR : announce every settled change under DIR until interrupted.

import { resolve } from 'node:path';
import { requireDirectory } from '../local/directory.js';
import { openSink } from '../pump/bus/open.js';
import { spoolPathOf } from '../pump/bus/spool.js';
import { watchTree } from '../pump/watch.js';
import { describeAnnounced, publishOptions, type PublishFlags } from './announce.js';
import { printJson, warn } from './output.js';

export interface WatchFlags extends PublishFlags {
  settle: number;
  initial: boolean;
}

export async function runWatch(dir: string, flags: WatchFlags): Promise<number> {
  const options = publishOptions({ ...flags, root: flags.root ?? dir });
  await requireDirectory(dir, 'cannot watch');
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A watcher waits for its broker however long it takes: announcements queue meanwhile.
  const sink = await openSink(flags.post, { exchange: flags.exchange, topic: flags.topic, maxAttempts: Infinity, log: warn });
  try {
    await watchTree(sink, {
      ...options,
      root: resolve(dir),
      settleMs: flags.settle,
      initial: flags.initial,
      exclude: flags.post.startsWith('spool:') ? [spoolPathOf(flags.post)] : [],
      signal: stop.signal,
      log: warn,
      onReady: () => warn(`watching ${resolve(dir)}, posting to ${sink.where}`),
      onAnnounced: (path, result) => {
        if ('removed' in result) {
          if (flags.json) printJson({ file: path, removed: true, sink: sink.where });
          else warn(`announced the removal of ${path}`);
        } else if (flags.json) {
          printJson({ file: path, relPath: result.message.relPath, size: result.message.size, signature: result.signature, ...(result.levels ? { levels: result.levels } : {}), fileOp: result.message.fileOp, seconds: result.seconds, sink: sink.where });
        } else {
          warn(describeAnnounced(result, sink.where));
        }
      },
    });
  } finally {
    await sink.close();
  }
  return 0;
}
