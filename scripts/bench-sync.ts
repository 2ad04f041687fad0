// zpump sync (js engine) vs the zsync client, against a loopback nginx.
// Everyday cases (1 GiB seeded file by default): identical, 1% scattered 4 KiB rewrites, 16 bytes
// inserted near the start, 1/16 appended; 64 KiB and 1 MiB blocks.
// Pathological cases (issue 10): a zero run after one changed block (64 KiB random + SIZE of zeros
// + 12345 bytes, seed patched at offset 5000), a uniform seed (0x01) against zeros with 1 MiB
// blocks and, as its yardstick, a random seed against the same zeros, and an unrelated seed with
// 2 KiB blocks. zsync stalls on the uniform seed: its runs stop after --zsync-timeout seconds.
// Alternating tools, one warm-up round, then medians of ROUNDS. Before each timed run: a fresh
// copy of the old file (flushed), no leftover outputs.
//   npx tsx scripts/bench-sync.ts [--size BYTES] [--rounds 3] [--cases all|everyday|pathological]
//                                 [--threads N] [--zsync-timeout 120] [--json] [--verbose]
// Bars (issue 10): js/zsync <= 0.8 on the everyday cases, <= 1.0 on the zero run, <= 0.1 on the
// unrelated seed; the uniform seed no slower than 2x the random seed (js); RSS <= 96 MB.

import { closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/helpers/nginx.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';

const size = Number(arg('--size', String(2 ** 30)));
const rounds = Number(arg('--rounds', '3'));
const which = arg('--cases', 'all');
const threads = arg('--threads', undefined);
const zsyncTimeout = Number(arg('--zsync-timeout', '120'));
const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-sync-'));
const www = join(dir, 'www');
mkdirSync(www);

interface Case {
  name: string;
  kind: 'everyday' | 'pathological';
  blockSizes: number[];
  /** Write the old file (the target before the sync) and the new one (served). */
  make(old: string, next: string): void;
}

const seeded = join(dir, 'seeded.bin');
const withSeeded = (): void => { if (!exists(seeded)) writeSeededFile(seeded, size, 11); };
function exists(path: string): boolean {
  try { closeSync(openSync(path, 'r')); return true; } catch { return false; }
}
function fill(path: string, length: number, byte: number): void {
  const fd = openSync(path, 'w');
  if (byte !== 0) {
    const chunk = Buffer.alloc(16 << 20, byte);
    for (let done = 0; done < length; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, length - done));
  }
  ftruncateSync(fd, length); // zeros stay sparse
  closeSync(fd);
}

const cases: Case[] = [
  { name: 'identical', kind: 'everyday', blockSizes: [65536, 1 << 20], make: (old, next) => { withSeeded(); copyFileSync(seeded, old); copyFileSync(seeded, next); } },
  {
    name: '1% scattered', kind: 'everyday', blockSizes: [65536, 1 << 20],
    make: (old, next) => {
      withSeeded();
      copyFileSync(seeded, old);
      copyFileSync(seeded, next);
      const fd = openSync(next, 'r+');
      const patch = Buffer.alloc(4096, 0x5a);
      const edits = Math.round((size * 0.01) / 4096);
      for (let i = 0; i < edits; i++) writeSync(fd, patch, 0, 4096, Math.floor(((i + 0.37) / edits) * (size - 4096)));
      closeSync(fd);
    },
  },
  {
    name: 'insert 16 B', kind: 'everyday', blockSizes: [65536, 1 << 20],
    make: (old, next) => {
      withSeeded();
      copyFileSync(seeded, old);
      const fd = openSync(next, 'w');
      const data = readFileSync(seeded);
      writeSync(fd, data, 0, 5000);
      writeSync(fd, Buffer.alloc(16, 0x33));
      writeSync(fd, data, 5000, data.length - 5000);
      closeSync(fd);
    },
  },
  {
    name: 'append 1/16', kind: 'everyday', blockSizes: [65536, 1 << 20],
    make: (old, next) => {
      withSeeded();
      copyFileSync(seeded, old);
      copyFileSync(seeded, next);
      const extra = join(dir, 'extra.bin');
      writeSeededFile(extra, size / 16, 99);
      const fd = openSync(next, 'a');
      writeSync(fd, readFileSync(extra));
      closeSync(fd);
      rmSync(extra);
    },
  },
  {
    name: 'zero run, 1 block changed', kind: 'pathological', blockSizes: [65536, 1 << 20],
    make: (old, next) => {
      const head = Buffer.alloc(65536);
      writeSeededFile(join(dir, 'head.bin'), 65536, 5);
      readFileSync(join(dir, 'head.bin')).copy(head);
      for (const [path, patched] of [[next, false], [old, true]] as const) {
        const fd = openSync(path, 'w');
        const h = Buffer.from(head);
        if (patched) h.set([1, 2, 3, 4, 5], 5000);
        writeSync(fd, h, 0, h.length, 0);
        ftruncateSync(fd, 65536 + size + 12345);
        closeSync(fd);
      }
    },
  },
  { name: 'zeros from a uniform 0x01 seed', kind: 'pathological', blockSizes: [1 << 20], make: (old, next) => { fill(next, size, 0); fill(old, size, 1); } },
  { name: 'zeros from a random seed', kind: 'pathological', blockSizes: [1 << 20], make: (old, next) => { withSeeded(); fill(next, size, 0); copyFileSync(seeded, old); } },
  { name: 'unrelated seed', kind: 'pathological', blockSizes: [2048], make: (old, next) => { withSeeded(); copyFileSync(seeded, next); writeSeededFile(old, size, 12); } },
];

const nginx = await startNginx({ root: www });
try {
  const results = [];
  const old = join(dir, 'old.bin');
  for (const c of cases) {
    if (which !== 'all' && which !== c.kind) continue;
    const data = join(www, 'new.bin');
    c.make(old, data);
    for (const blockSize of c.blockSizes) {
      timed('zsyncmake', ['-b', String(blockSize), '-u', 'new.bin', '-o', join(www, 'new.zsync'), data]);
      const control = `${nginx.url}new.zsync`;
      const wall: Record<string, number[]> = { zsync: [], js: [] };
      const rss: Record<string, number[]> = { zsync: [], js: [] };
      const cpu: Record<string, number[]> = { zsync: [], js: [] };
      const bytes: Record<string, number> = {};
      let requests = 0;
      for (let round = 0; round <= rounds; round++) {
        for (const tool of ['zsync', 'js']) {
          const target = join(dir, `target-${tool}.bin`);
          rmSync(target, { force: true });
          copyFileSync(old, target);
          await nginx.clearLog();
          let run: { seconds: number; rssMb: number; cpuSeconds: number; stdout: string };
          try {
            run = tool === 'zsync'
              ? timed('timeout', [String(zsyncTimeout), 'zsync', '-q', '-o', target, control], { cwd: dir })
              : timed(process.execPath, [CLI, 'sync', '--json', '--engine', 'js', ...(threads ? ['--threads', threads] : []), control, target]);
          } catch (error) {
            if (tool === 'js') throw error;
            run = { seconds: Infinity, rssMb: NaN, cpuSeconds: NaN, stdout: '' }; // zsync stopped at --zsync-timeout
          }
          if (process.argv.includes('--verbose')) console.error(`${c.name} ${blockSize} ${tool} round ${round}: ${run.seconds.toFixed(2)} s`);
          const log = await nginx.readLog();
          bytes[tool] = log.filter((e) => e.path === '/new.bin').reduce((n, e) => n + e.bodyBytesSent, 0);
          if (tool === 'js') requests = JSON.parse(run.stdout).requests;
          if (round > 0) { wall[tool]!.push(run.seconds); rss[tool]!.push(run.rssMb); cpu[tool]!.push(run.cpuSeconds); }
          rmSync(`${target}.zs-old`, { force: true });
          for (const f of [target, `${target}.part`]) rmSync(f, { force: true });
        }
      }
      const z = median(wall.zsync!);
      results.push({
        case: c.name,
        block: blockSize >= 1 << 20 ? '1 MiB' : blockSize >= 65536 ? '64 KiB' : `${blockSize >> 10} KiB`,
        'zsync s': Number.isFinite(z) ? z.toFixed(2) : `> ${zsyncTimeout}`,
        'js s': median(wall.js!).toFixed(2),
        'js/zsync': Number.isFinite(z) ? (median(wall.js!) / z).toFixed(2) : `< ${(median(wall.js!) / zsyncTimeout).toFixed(2)}`,
        // user + system seconds: steadier than wall time where page-cache writes vary run to run
        'CPU s zsync / js': Number.isFinite(z) ? `${median(cpu.zsync!).toFixed(2)} / ${median(cpu.js!).toFixed(2)}` : `- / ${median(cpu.js!).toFixed(2)}`,
        'zsync MB fetched': Number.isFinite(z) ? (bytes.zsync! / 1e6).toFixed(1) : '-',
        'js MB fetched': (bytes.js! / 1e6).toFixed(1),
        'js requests': requests,
        'js RSS MB': Math.max(...rss.js!).toFixed(0),
      });
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ size, rounds, results }));
  else console.log(`sync, ${(size / 2 ** 30).toFixed(2)} GiB via loopback nginx, median of ${rounds} rounds${threads ? `, --threads ${threads}` : ''}\n${table(results)}`);
} finally {
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
