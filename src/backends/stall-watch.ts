// zsync 0.6.2 has no timeout of its own: against a server that stops sending it waits forever.
// We watch its I/O counters (/proc/PID/io: bytes and calls, network and disk alike) and call
// `onStall` when none moved for `stallMs`. Reading a large seed counts as activity, so a slow
// local scan is never mistaken for a silent server. Where /proc is missing nothing is watched.

import { readFile } from 'node:fs/promises';

/**
 * `maxCalls`: read and write calls the child may make in all. Against a server that answers a
 * range request with other bytes, zsync 0.6.2 asks again at once, forever (thousands of requests
 * a second: never quiet, so never a stall); past `maxCalls` that is `onRunaway`.
 */
export function watchChildIo(pid: number | undefined, stallMs: number, onStall: () => void, runaway?: { maxCalls: number; onRunaway: () => void }): () => void {
  if (pid === undefined) return () => undefined;
  let last = '';
  let quietSince = Date.now();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readFile(`/proc/${pid}/io`, 'utf8')
      .then((text) => {
        const counters = text.split('\n').filter((l) => /^(rchar|wchar|syscr|syscw):/.test(l)).join(' ');
        const calls = [...counters.matchAll(/sysc[rw]: (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
        if (runaway && calls > runaway.maxCalls) {
          clearInterval(timer);
          runaway.onRunaway();
          return;
        }
        const now = Date.now();
        if (counters !== last) {
          last = counters;
          quietSince = now;
        } else if (now - quietSince >= stallMs) {
          clearInterval(timer);
          onStall();
        }
      })
      .catch(() => clearInterval(timer)) // the process is gone, or no /proc here
      .finally(() => { busy = false; });
  }, Math.max(50, Math.min(1000, stallMs / 4)));
  timer.unref();
  return () => clearInterval(timer);
}
