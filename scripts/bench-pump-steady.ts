// The pump in steady state: the subscriber already holds version 1, applied through zpump (so it
// has whatever zpump keeps from that sync), and version 2 is timed from the start of `announce`
// until `subscribe --once` has applied it. Spool bus (no broker in the timing), nginx serves.
//   delta: both versions announced with their signatures; version 2 rewrites FRACTION of each
//          file in scattered 4 KiB pieces.
//   whole: the same files announced with --threshold above SIZE: fetched whole.
// One warm-up round of each mode, then --runs rounds; medians. Prints delta and whole seconds,
// bytes nginx sent, peak RSS, and the break-even link rate (bytes saved) / (extra seconds of
// the delta path): on any faster link, whole files arrive sooner.
//   npx tsx scripts/bench-pump.ts --steady [--files 4] [--size 128M] [--fraction 0.01] [--runs 3]
//        [--warmup 1] [--engine auto|zsync|js] [--limit-rate 100M] [--prefetch 4] [--levels 1|2] [--dir PARENT] [--json]
// ZPUMP_START=copy-blocks in the environment: the subscriber's plain start instead of a clone (to compare);
// ZPUMP_REUSE=0: no signature kept or reused (the sync as before issue 13).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { cpus, hostname, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseSize } from '../src/commands/flags.js';
import { startNginx, type NginxServer } from '../test/helpers/nginx.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { CLI, arg, median, table, timed, writeSeededFile } from './lib/bench.mjs';
import { rewriteScattered } from './lib/rewrite.js';

type Mode = 'delta' | 'whole';

const files = Number(arg('--files', '4'));
const size = parseSize(arg('--size', '128M'), '--size');
const fraction = Number(arg('--fraction', '0.01'));
const runs = Number(arg('--runs', '3'));
const warmup = Number(arg('--warmup', '1'));
const engine = arg('--engine', 'auto') as string;
const prefetch = arg('--prefetch', '4') as string;
const limitRateArg = arg('--limit-rate', undefined) as string | undefined;
const limitRate = limitRateArg === undefined ? undefined : parseSize(limitRateArg, '--limit-rate');
const parent = arg('--dir', tmpdir()) as string;
/** announce --levels (1: one signature inline, what the subscriber keeps and compares with). */
const levels = arg('--levels', undefined) as string | undefined;
const asJson = process.argv.includes('--json');
if (!Number.isInteger(files) || files < 1) throw new Error('--files expects a whole number >= 1');
if (size < 8192) throw new Error('--size expects at least 8k');
if (!(fraction >= 0 && fraction <= 1)) throw new Error('--fraction expects a number between 0 and 1');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs expects a whole number >= 1');
if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup expects a whole number >= 0');

const names = Array.from({ length: files }, (_, i) => `file-${String(i).padStart(3, '0')}.bin`);
const totalBytes = files * size;
const log = (line: string) => { if (!asJson) process.stderr.write(`${line}\n`); };

function sha1(path: string): string {
  return createHash('sha1').update(readFileSync(path)).digest('hex');
}

interface Step { seconds: number; rssMb: number; stdout: string; stderr: string }

interface Outcome {
  mode: Mode;
  round: number;
  warmup: boolean;
  seconds: number;
  announceSeconds: number;
  subscribeSeconds: number;
  announceRssMb: number;
  subscribeRssMb: number;
  nginxBytes: number;
  actions: string[];
  notes: string[];
}

const dir = mkdtempSync(join(parent, 'zpump-bench-steady-'));
const v1 = join(dir, 'v1');
const v2 = join(dir, 'v2');
const pub = join(dir, 'pub');
let nginx: NginxServer | undefined;

try {
  for (const d of [v1, v2, pub]) mkdirSync(d);
  log(`bench-pump --steady: making ${files} × ${size} bytes (two versions) in ${dir}`);
  for (const [i, name] of names.entries()) {
    writeSeededFile(join(v1, name), size, 1000 + i);
    copyFileSync(join(v1, name), join(v2, name));
    rewriteScattered(join(v2, name), size, fraction, 5000 + i);
  }
  const want1 = names.map((n) => sha1(join(v1, n)));
  const want2 = names.map((n) => sha1(join(v2, n)));
  nginx = await startNginx({ root: pub, ...(limitRate ? { limitRate } : {}) });
  const hourAgo = Date.now() / 1000 - 3600;

  /** Put version `from` in the publisher's tree (a copy renamed into place, as a publisher would), mtime `at`. */
  const publish = (from: string, at: number) => {
    for (const name of names) {
      copyFileSync(join(from, name), join(pub, `.${name}.tmp`));
      utimesSync(join(pub, `.${name}.tmp`), at, at);
      renameSync(join(pub, `.${name}.tmp`), join(pub, name));
    }
  };

  const announce = (mode: Mode, spool: string): Step => timed(process.execPath, [
    CLI, 'announce', '--base-url', nginx!.url, '--root', pub, '--post', `spool:${spool}`, '--json',
    ...(mode === 'whole' ? ['--threshold', String(size + 1)] : []),
    ...(levels ? ['--levels', levels] : []),
    ...names.map((n) => join(pub, n)),
  ]);
  const subscribe = (spool: string, sub: string): Step => timed(process.execPath, [
    CLI, 'subscribe', `spool:${spool}`, '--once', '--dir', sub, '--engine', engine, '--prefetch', prefetch, '--json',
  ]);

  const round = async (mode: Mode, n: number, isWarmup: boolean): Promise<Outcome> => {
    const sub = join(dir, `sub-${mode}`);
    const spool = join(dir, `spool-${mode}`);
    rmSync(sub, { recursive: true, force: true });
    rmSync(spool, { recursive: true, force: true });
    mkdirSync(sub);
    // Version 1 through zpump, untimed: whatever the subscriber keeps from a sync is in place.
    publish(v1, hourAgo);
    announce(mode, spool);
    subscribe(spool, sub);
    const got1 = names.map((name) => sha1(join(sub, name)));
    if (got1.some((d, i) => d !== want1[i])) throw new Error(`${mode}: version 1 was not applied`);
    publish(v2, hourAgo + 60);
    spawnSync('sync');
    await nginx!.clearLog();
    const a = announce(mode, spool);
    const s = subscribe(spool, sub);
    const got2 = names.map((name) => sha1(join(sub, name)));
    if (got2.some((d, i) => d !== want2[i])) throw new Error(`${mode}: version 2 differs after subscribe --once:\n${s.stderr}`);
    const reports = s.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { action: string; fallback?: string; relPath: string });
    const notes = [
      ...s.stderr.split('\n').filter((l) => l.trim() && !/ready: applying| applied, 0 set aside/.test(l)).map((l) => `${mode} subscriber: ${l}`),
      ...reports.filter((r) => r.fallback).map((r) => `${mode}: ${r.relPath}: fallback: ${r.fallback}`),
    ];
    const entries = await nginx!.readLog();
    return {
      mode, round: n, warmup: isWarmup,
      seconds: a.seconds + s.seconds, announceSeconds: a.seconds, subscribeSeconds: s.seconds,
      announceRssMb: a.rssMb, subscribeRssMb: s.rssMb,
      nginxBytes: entries.reduce((sum, e) => sum + e.bodyBytesSent, 0),
      actions: reports.map((r) => r.action),
      notes,
    };
  };

  const outcomes: Outcome[] = [];
  for (let n = 1; n <= warmup + runs; n++) {
    const order: Mode[] = n % 2 === 1 ? ['delta', 'whole'] : ['whole', 'delta'];
    for (const mode of order) {
      log(`bench-pump --steady: ${n <= warmup ? 'warm-up' : `run ${n - warmup}/${runs}`}, ${mode}`);
      outcomes.push(await round(mode, n, n <= warmup));
    }
  }

  const timedOnes = (mode: Mode) => outcomes.filter((o) => o.mode === mode && !o.warmup);
  const med = (mode: Mode, f: (o: Outcome) => number): number => median(timedOnes(mode).map(f));
  const rows = (['delta', 'whole'] as const).map((mode) => ({
    mode,
    's (announce + subscribe)': med(mode, (o) => o.seconds).toFixed(2),
    'announce s': med(mode, (o) => o.announceSeconds).toFixed(2),
    'subscribe s': med(mode, (o) => o.subscribeSeconds).toFixed(2),
    'MB sent (nginx)': (med(mode, (o) => o.nginxBytes) / 1e6).toFixed(1),
    '% of data': ((100 * med(mode, (o) => o.nginxBytes)) / totalBytes).toFixed(2),
    'peak RSS MB (announce/subscribe)': `${Math.max(...timedOnes(mode).map((o) => o.announceRssMb)).toFixed(0)}/${Math.max(...timedOnes(mode).map((o) => o.subscribeRssMb)).toFixed(0)}`,
    actions: [...new Set(timedOnes(mode).flatMap((o) => o.actions))].join(' '),
  }));
  const deltaS = med('delta', (o) => o.seconds);
  const wholeS = med('whole', (o) => o.seconds);
  const saved = med('whole', (o) => o.nginxBytes) - med('delta', (o) => o.nginxBytes);
  const extra = deltaS - wholeS;
  // Below this rate the bytes saved take longer to send than the delta path's extra work.
  const breakEven = extra > 0 ? saved / extra : Infinity;
  const notes = [...new Set(outcomes.flatMap((o) => o.notes))];
  const machine = { host: hostname(), cpu: cpus()[0]?.model.trim() ?? '?', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  if (asJson) {
    console.log(JSON.stringify({ files, size, fraction, runs, warmup, engine, limitRate, machine, outcomes, ratio: deltaS / wholeS, breakEvenBytesPerSecond: breakEven }));
  } else {
    console.log(
      `pump steady state, ${files} × ${size} bytes seeded random, ${+(fraction * 100).toFixed(3)}% rewritten in scattered 4 KiB pieces; ` +
        `version 1 applied through zpump, version 2 timed: announce → spool → subscribe --once (--engine ${engine}, --prefetch ${prefetch}) → nginx` +
        `${limitRate ? ` (limit_rate ${limitRate} B/s per connection)` : ''}, on 127.0.0.1; median of ${runs} after ${warmup} warm-up round(s)\n` +
        `${machine.host}: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB; node ${machine.node}; folder ${parent}\n` +
        `${table(rows)}\n` +
        `delta/whole time ${(deltaS / wholeS).toFixed(2)}; bytes saved ${(saved / 1e6).toFixed(1)} MB; ` +
        (extra > 0 ? `break-even link rate ${(breakEven / 1e6).toFixed(0)} MB/s (${((breakEven * 8) / 1e9).toFixed(2)} Gbit/s): faster links get whole files sooner` : 'the delta arrives first at any link rate') +
        (notes.length ? `\nnotes:\n${notes.map((n) => `  ${n}`).join('\n')}` : ''),
    );
  }
} finally {
  await nginx?.stop().catch((e: unknown) => console.error(`nginx stop: ${String(e)}`));
  rmSync(dir, { recursive: true, force: true });
}
