// zpump sync (js engine) vs the zsync client, against a loopback nginx, 1 GiB seeded file.
// Cases: identical, 1% scattered 4 KiB rewrites, 16 bytes inserted near the start, 1/16
// appended; 64 KiB and 1 MiB blocks. Alternating tools, one warm-up round, then medians of 3.
// Before each timed run: a fresh copy of the old file (flushed), no leftover outputs.
//   npx tsx scripts/bench-sync.ts [--size BYTES] [--rounds 3] [--json]
// Bars (DESIGN.md): js/zsync wall time <= 1.0 at 64 KiB; bytes fetched <= 1.05 x zsync's; RSS <= 96 MB.

import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/helpers/nginx.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';

const size = Number(arg('--size', String(2 ** 30)));
const rounds = Number(arg('--rounds', '3'));
const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-sync-'));
const www = join(dir, 'www');
mkdirSync(www);
const nginx = await startNginx({ root: www });
try {
  const old = join(dir, 'old.bin');
  writeSeededFile(old, size, 11);
  const variants: Record<string, (path: string) => void> = {
    identical: (p) => copyFileSync(old, p),
    '1% scattered': (p) => {
      copyFileSync(old, p);
      const fd = openSync(p, 'r+');
      const patch = Buffer.alloc(4096, 0x5a);
      const edits = Math.round((size * 0.01) / 4096);
      for (let i = 0; i < edits; i++) writeSync(fd, patch, 0, 4096, Math.floor(((i + 0.37) / edits) * (size - 4096)));
      closeSync(fd);
    },
    'insert 16 B': (p) => {
      const fd = openSync(p, 'w');
      const data = readFileSync(old);
      writeSync(fd, data, 0, 5000);
      writeSync(fd, Buffer.alloc(16, 0x33));
      writeSync(fd, data, 5000, data.length - 5000);
      closeSync(fd);
    },
    'append 1/16': (p) => {
      copyFileSync(old, p);
      const extra = join(dir, 'extra.bin');
      writeSeededFile(extra, size / 16, 99);
      const fd = openSync(p, 'a');
      writeSync(fd, readFileSync(extra));
      closeSync(fd);
    },
  };
  const results = [];
  for (const [name, makeVariant] of Object.entries(variants)) {
    const data = join(www, 'new.bin');
    makeVariant(data);
    for (const blockSize of [65536, 1 << 20]) {
      timed('zsyncmake', ['-b', String(blockSize), '-u', 'new.bin', '-o', join(www, 'new.zsync'), data]);
      const control = `${nginx.url}new.zsync`;
      const wall: Record<string, number[]> = { zsync: [], js: [] };
      const rss: Record<string, number[]> = { zsync: [], js: [] };
      const bytes: Record<string, number> = {};
      let requests = 0;
      for (let round = 0; round <= rounds; round++) {
        for (const tool of ['zsync', 'js']) {
          const target = join(dir, `target-${tool}.bin`);
          rmSync(target, { force: true });
          copyFileSync(old, target);
          await nginx.clearLog();
          const run = tool === 'zsync'
            ? timed('zsync', ['-q', '-o', target, control], { cwd: dir })
            : timed(process.execPath, [CLI, 'sync', '--json', '--engine', 'js', control, target]);
          const log = await nginx.readLog();
          bytes[tool] = log.filter((e) => e.path === '/new.bin').reduce((n, e) => n + e.bodyBytesSent, 0);
          if (tool === 'js') requests = JSON.parse(run.stdout).requests;
          if (round > 0) { wall[tool]!.push(run.seconds); rss[tool]!.push(run.rssMb); }
          rmSync(`${target}.zs-old`, { force: true });
        }
      }
      results.push({
        case: name,
        block: blockSize >= 1 << 20 ? '1 MiB' : '64 KiB',
        'zsync s': median(wall.zsync!).toFixed(2),
        'js s': median(wall.js!).toFixed(2),
        'js/zsync': (median(wall.js!) / median(wall.zsync!)).toFixed(2),
        'zsync MB fetched': (bytes.zsync! / 1e6).toFixed(1),
        'js MB fetched': (bytes.js! / 1e6).toFixed(1),
        'js requests': requests,
        'js RSS MB': Math.max(...rss.js!).toFixed(0),
      });
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ size, rounds, results }));
  else console.log(`sync, ${(size / 2 ** 30).toFixed(2)} GiB seeded random via loopback nginx, median of ${rounds} rounds\n${table(results)}`);
} finally {
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
