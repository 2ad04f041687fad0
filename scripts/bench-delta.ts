// Two-level signatures (README "Two-level sync", issue 12) against today's one-level message, the C
// zsync client given the fine .zsync, and a whole download, through a loopback nginx whose log
// counts every byte. Cases: 1% scattered 4 KiB rewrites, 16 bytes inserted near the start, 1/16
// appended. Messages come from `announce` with default settings (two levels) and `--levels 1`
// (today's one level); without levels in `announce` they are built as it would: fine = zsyncmake's
// block size beside the file, coarse inline = the smallest block size whose message fits 8 192 B.
//   npm run build && npx tsx scripts/bench-delta.ts [--size BYTES] [--rounds 3] [--json]
//     [--cases scattered,insert,append] [--modes two,one,zsync,whole] [--threads N]
// Modes run in turn within each round (A/B alternating, so a burst of other work hits them alike);
// round 0 is a warm-up. Wall time on this VM varies with page-cache writes: CPU s (user + system)
// and peak RSS are printed beside it.
// Bars (issue 12): message <= 8 192 B; 1% scattered: fetched <= 2.5 x changed; insert 16 B:
// fetched <= 256 KiB; append: fetched <= 1.05 x appended + 64 KiB; two-level time <= one-level.

import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startNginx, type NginxLogEntry } from '../test/helpers/nginx.js';
import { renderAnnouncement, v03Time } from '../src/format/announcement.js';
import { recordBytes, zsyncmakeDefaultBlockSize } from '../src/format/hash-lengths.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';

const size = Number(arg('--size', String(256 << 20)));
const rounds = Number(arg('--rounds', '3'));
const caseNames = arg('--cases', 'scattered,insert,append').split(',');
const modeNames = arg('--modes', 'two,one,zsync,whole').split(',');
const threads = arg('--threads', undefined);
const threadArgs = threads === undefined ? [] : ['--threads', threads];
const LIMIT = 8192;
const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-delta-'));
const www = join(dir, 'www');
mkdirSync(www);
const hasZsync = spawnSync('zsync', ['-V']).status === 0;
const nginx = await startNginx({ root: www });

function sha512File(path: string): string {
  const h = createHash('sha512');
  const buf = Buffer.alloc(16 << 20);
  const fd = openSync(path, 'r');
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  closeSync(fd);
  return h.digest('base64');
}

function makeZsync(input: string, output: string, blockSize?: number): Buffer {
  timed(process.execPath, [CLI, 'make', '--force', '--engine', 'js', ...(blockSize ? ['-b', String(blockSize)] : []), '-o', output, input]);
  return readFileSync(output);
}

/**
 * Messages for www/new.bin from the publisher with default settings (`announce`: two levels;
 * `announce --levels 1`: today's one level). Built here by hand when this `announce` has no levels.
 */
function publish(): { twoLevel: string; oneLevel: string; coarseBlock: number; fineBlock: number } {
  const two = spawnSync(process.execPath, [CLI, 'announce', '--base-url', nginx.url.replace(/\/$/, ''), 'new.bin'], { cwd: www, encoding: 'utf8', maxBuffer: 64 << 20 });
  const one = spawnSync(process.execPath, [CLI, 'announce', '--levels', '1', '--base-url', nginx.url.replace(/\/$/, ''), 'new.bin'], { cwd: www, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (two.status === 0 && one.status === 0) {
    const z = JSON.parse(two.stdout).zsync;
    if (z?.fine) return { twoLevel: two.stdout.trim(), oneLevel: one.stdout.trim(), coarseBlock: z.blockSize, fineBlock: z.fine.blockSize };
  }
  return publishByHand();
}

function publishByHand(): { twoLevel: string; oneLevel: string; coarseBlock: number; fineBlock: number } {
  const data = join(www, 'new.bin');
  const length = statSync(data).size;
  const identity = { method: 'sha512', value: sha512File(data) };
  const fineBlock = zsyncmakeDefaultBlockSize(length);
  const fine = makeZsync(data, join(www, 'new.bin.zsync'), fineBlock);
  const base = { pubTime: v03Time(Date.now()), baseUrl: nginx.url.replace(/\/$/, ''), relPath: 'new.bin', size: length, identity, extra: {} };
  const fineRef = { retrievePath: 'new.bin.zsync', size: fine.length, blockSize: fineBlock, identity: { method: 'sha512', value: createHash('sha512').update(fine).digest('base64') } };
  // Start from the records' estimate, then double until the rendered message fits.
  let coarseBlock = 1024;
  while (Math.ceil((recordBytes(length, coarseBlock) + 300) / 3) * 4 + 900 > LIMIT) coarseBlock *= 2;
  for (;;) {
    const coarse = makeZsync(data, join(dir, 'coarse.zsync'), coarseBlock);
    const twoLevel = renderAnnouncement({ ...base, zsync: { kind: 'inline', bytes: coarse, blockSize: coarseBlock, fine: fineRef } });
    if (Buffer.byteLength(twoLevel) <= LIMIT) {
      const one = makeZsync(data, join(dir, 'one.zsync'));
      const oneLevel = renderAnnouncement({ ...base, zsync: { kind: 'inline', bytes: one } });
      return { twoLevel, oneLevel, coarseBlock, fineBlock };
    }
    coarseBlock *= 2;
  }
}

function copyWithInsert(from: string, to: string, at: number, insert: Buffer): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'w');
  const buf = Buffer.alloc(16 << 20);
  let pos = 0;
  for (let n; (n = readSync(src, buf, 0, buf.length, null)) > 0; ) {
    if (pos <= at && at < pos + n) {
      writeSync(dst, buf, 0, at - pos);
      writeSync(dst, insert);
      writeSync(dst, buf, at - pos, n - (at - pos));
    } else writeSync(dst, buf, 0, n);
    pos += n;
  }
  closeSync(src);
  closeSync(dst);
}

const bytesOf = (log: NginxLogEntry[], pred: (e: NginxLogEntry) => boolean): number => log.filter(pred).reduce((n, e) => n + e.bodyBytesSent, 0);
const kib = (n: number): string => (n / 1024).toFixed(0);

try {
  const old = join(dir, 'old.bin');
  writeSeededFile(old, size, 11);
  const edits = Math.round((size * 0.01) / 4096);
  const cases: Array<{ key: string; name: string; changed: number; make(p: string): void; bar(fetched: number): boolean; barText: string }> = [
    {
      key: 'scattered', name: '1% scattered 4 KiB', changed: edits * 4096, barText: '<= 2.5 x changed',
      bar: (f) => f <= 2.5 * edits * 4096,
      make: (p) => {
        copyFileSync(old, p);
        const fd = openSync(p, 'r+');
        const patch = Buffer.alloc(4096, 0x5a);
        for (let i = 0; i < edits; i++) writeSync(fd, patch, 0, 4096, Math.floor(((i + 0.37) / edits) * (size - 4096)));
        closeSync(fd);
      },
    },
    {
      key: 'insert', name: 'insert 16 B near start', changed: 16, barText: '<= 256 KiB',
      bar: (f) => f <= 256 << 10,
      make: (p) => copyWithInsert(old, p, 5000, Buffer.alloc(16, 0x33)),
    },
    {
      key: 'append', name: 'append 1/16', changed: size / 16, barText: '<= 1.05 x appended + 64 KiB',
      bar: (f) => f <= 1.05 * (size / 16) + (64 << 10),
      make: (p) => {
        copyFileSync(old, p);
        const extra = join(dir, 'extra.bin');
        writeSeededFile(extra, size / 16, 99);
        const fd = openSync(p, 'a');
        writeSync(fd, readFileSync(extra));
        closeSync(fd);
        rmSync(extra);
      },
    },
  ];
  const rows: Array<Record<string, string | number>> = [];
  for (const c of cases.filter((k) => caseNames.includes(k.key))) {
    c.make(join(www, 'new.bin'));
    const { twoLevel, oneLevel, coarseBlock, fineBlock } = publish();
    writeFileSync(join(dir, 'two.json'), twoLevel);
    writeFileSync(join(dir, 'one.json'), oneLevel);
    const allModes: Array<{ key: string; mode: string; message: number; run(target: string): { seconds: number; cpuSeconds: number; rssMb: number } }> = [
      { key: 'two', mode: `two-level (${kib(coarseBlock)}K/${kib(fineBlock)}K)`, message: Buffer.byteLength(twoLevel), run: (t) => timed(process.execPath, [CLI, 'sync', '--json', '--engine', 'js', ...threadArgs, join(dir, 'two.json'), t]) },
      { key: 'one', mode: 'one-level (today)', message: Buffer.byteLength(oneLevel), run: (t) => timed(process.execPath, [CLI, 'sync', '--json', '--engine', 'js', ...threadArgs, join(dir, 'one.json'), t]) },
      ...(hasZsync ? [{ key: 'zsync', mode: 'zsync on the fine .zsync', message: 0, run: (t: string) => timed('zsync', ['-q', '-o', t, `${nginx.url}new.bin.zsync`], { cwd: dir }) }] : []),
      { key: 'whole', mode: 'whole download', message: 0, run: (t) => timed('curl', ['-sS', '-o', t, `${nginx.url}new.bin`]) },
    ];
    const modes = allModes.filter((m) => modeNames.includes(m.key));
    const got = modes.map(() => ({ wall: [] as number[], cpu: [] as number[], rss: [] as number[], sig: 0, data: 0, requests: 0 }));
    for (let round = 0; round <= rounds; round++) {
      for (const [i, m] of modes.entries()) {
        const target = join(dir, 'target.bin');
        rmSync(target, { force: true });
        rmSync(`${target}.zs-old`, { force: true });
        copyFileSync(old, target);
        await nginx.clearLog();
        const run = m.run(target);
        const log = await nginx.readLog();
        const g = got[i]!;
        g.sig = bytesOf(log, (e) => e.path.endsWith('.zsync'));
        g.data = bytesOf(log, (e) => e.path === '/new.bin');
        g.requests = log.length;
        if (round > 0) {
          g.wall.push(run.seconds);
          g.cpu.push(run.cpuSeconds);
          g.rss.push(run.rssMb);
        }
      }
    }
    for (const [i, m] of modes.entries()) {
      const g = got[i]!;
      rows.push({
        case: c.name, mode: m.mode, 'message B': m.message || '-', 'sig KiB': kib(g.sig), 'data KiB': kib(g.data), 'total KiB': kib(g.sig + g.data),
        requests: g.requests, 's (median)': median(g.wall).toFixed(2), 'CPU s': median(g.cpu).toFixed(2), 'RSS MB': Math.max(...g.rss).toFixed(0),
        bar: m.key === 'two' ? `${c.bar(g.sig + g.data) ? 'ok' : 'MISSED'} (${c.barText})` : '',
      });
    }
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify({ size, rounds, rows }));
  else console.log(`delta sync, ${(size / 2 ** 20).toFixed(0)} MiB seeded random via loopback nginx, median of ${rounds} rounds after a warm-up\n${table(rows)}`);
} finally {
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
