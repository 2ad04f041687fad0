// Shared pieces of the benchmark scripts: seeded data files, timed runs with peak RSS (GNU time),
// medians, and a plain table. Benchmarks run the C tools and zpump alternately in one run.

import { spawnSync } from 'node:child_process';
import { existsSync, openSync, writeSync, closeSync } from 'node:fs';

export const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => existsSync(p));

/** Write `size` seeded pseudo-random bytes (xorshift32) to `path`, 16 MiB at a time. */
export function writeSeededFile(path, size, seed) {
  const chunk = Buffer.alloc(16 << 20);
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length >>> 2);
  let x = seed >>> 0 || 1;
  const fd = openSync(path, 'w');
  for (let done = 0; done < size; ) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      words[i] = x;
    }
    const n = Math.min(chunk.length, size - done);
    writeSync(fd, chunk, 0, n);
    done += n;
  }
  closeSync(fd);
}

/**
 * Run a command; return wall seconds, peak RSS in MB and CPU seconds (user + system; both from
 * GNU time when installed). CPU time is the steadier yardstick on a VM whose page-cache writes
 * vary from 0.5 to 7 s per GiB between runs.
 */
export function timed(cmd, args, options = {}) {
  spawnSync('sync');
  const argv = GNU_TIME ? [GNU_TIME, '-f', '%M %U %S', cmd, ...args] : [cmd, ...args];
  const t0 = process.hrtime.bigint();
  const run = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (run.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  const [maxKb, user, system] = GNU_TIME ? lines.at(-1).split(' ').map(Number) : [NaN, NaN, NaN];
  return { seconds, rssMb: maxKb / 1024, cpuSeconds: user + system, stdout: run.stdout, stderr: GNU_TIME ? lines.slice(0, -1).join('\n') : run.stderr };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function table(rows) {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(width[i])).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

export function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
