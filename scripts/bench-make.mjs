#!/usr/bin/env node
// zpump make (js engine) vs zsyncmake on a seeded 1 GiB file, at 64 KiB and 1 MiB blocks.
// Alternates the two tools: one warm-up round (not counted), then 3 timed rounds; medians.
//   node scripts/bench-make.mjs [--size 1G-in-bytes] [--rounds 3] [--json]
// Bars (DESIGN.md): js/zsyncmake wall time <= 0.75, peak RSS <= 96 MB.

import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';

const size = Number(arg('--size', String(2 ** 30)));
const rounds = Number(arg('--rounds', '3'));
const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-make-'));
try {
  const input = join(dir, 'data.bin');
  writeSeededFile(input, size, 20261124);
  const results = [];
  for (const blockSize of [65536, 1048576]) {
    const c = [], js = [], cRss = [], jsRss = [];
    for (let round = 0; round <= rounds; round++) {
      const a = timed('zsyncmake', ['-b', String(blockSize), '-u', 'data.bin', '-o', join(dir, 'c.zsync'), input]);
      const b = timed(process.execPath, [CLI, 'make', '--engine', 'js', '--force', '-b', String(blockSize), '-u', 'data.bin', '-o', join(dir, 'js.zsync'), input]);
      if (!readFileSync(join(dir, 'c.zsync')).equals(readFileSync(join(dir, 'js.zsync')))) throw new Error(`outputs differ at block size ${blockSize}`);
      if (round === 0) continue; // warm-up
      c.push(a.seconds); js.push(b.seconds); cRss.push(a.rssMb); jsRss.push(b.rssMb);
    }
    results.push({
      block: blockSize >= 1 << 20 ? `${blockSize >> 20} MiB` : `${blockSize >> 10} KiB`,
      'zsyncmake s': median(c).toFixed(2),
      'js s': median(js).toFixed(2),
      'js/zsyncmake': (median(js) / median(c)).toFixed(2),
      'zsyncmake RSS MB': Math.max(...cRss).toFixed(0),
      'js RSS MB': Math.max(...jsRss).toFixed(0),
      identical: 'yes',
    });
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ size, rounds, results }));
  else console.log(`make, ${(size / 2 ** 30).toFixed(2)} GiB seeded random, median of ${rounds} rounds (bar: ratio <= 0.75, js RSS <= 96 MB)\n${table(results)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
