#!/usr/bin/env node
// zpump announce (two levels: fine .zsync written, coarse inline, sha512 identity, one read) vs
// zpump make (one signature, auto block size), make at the fine level's block size alone, and
// announce --levels 1 on the same seeded file.
// Alternates them: one warm-up round (not counted), then timed rounds; medians, peak RSS.
//   node scripts/bench-announce.mjs [--size 256M-in-bytes] [--rounds 3] [--json]
// Bars (issue 13): announce <= 1.15 x make, peak RSS <= 96 MB.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';

const size = Number(arg('--size', String(256 * 2 ** 20)));
const rounds = Number(arg('--rounds', '3'));
const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-announce-'));
try {
  const input = join(dir, 'data.bin');
  writeSeededFile(input, size, 20261202);
  const runs = {
    make: [process.execPath, [CLI, 'make', '--engine', 'js', '-o', join(dir, 'make.zsync'), input]],
    // The fine level's own signature (zsyncmake's default block size: 2 KiB below 100 MB, else 4 KiB), made alone.
    'make -b FINE': [process.execPath, [CLI, 'make', '--engine', 'js', '-b', size < 100_000_000 ? '2048' : '4096', '-o', join(dir, 'fine.zsync'), input]],
    'announce (2 levels)': [process.execPath, [CLI, 'announce', '--base-url', 'http://h/pub', '--root', dir, input]],
    'announce --levels 1': [process.execPath, [CLI, 'announce', '--levels', '1', '--engine', 'js', '--base-url', 'http://h/pub', '--root', dir, input]],
  };
  const seconds = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  const rss = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const [name, [cmd, args]] of Object.entries(runs)) {
      const r = timed(cmd, args);
      if (round === 0) continue; // warm-up
      seconds[name].push(r.seconds);
      rss[name].push(r.rssMb);
    }
  }
  const base = median(seconds.make);
  const results = Object.keys(runs).map((name) => ({
    run: name,
    's (median)': median(seconds[name]).toFixed(2),
    'x make': (median(seconds[name]) / base).toFixed(2),
    'peak RSS MB': Math.max(...rss[name]).toFixed(0),
  }));
  if (process.argv.includes('--json')) console.log(JSON.stringify({ size, rounds, results }));
  else console.log(`announce vs make, ${(size / 2 ** 20).toFixed(0)} MiB seeded random, median of ${rounds} rounds (bar: announce <= 1.15 x make, RSS <= 96 MB)\n${table(results)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
