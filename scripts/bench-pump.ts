// The pump end to end on 127.0.0.1: `zpump announce` → RabbitMQ → `zpump subscribe` → nginx, two modes
// side by side in one run.
//   delta: N seeded-random files of SIZE; the subscriber holds the old version of each (a copy, older
//          mtime), the publisher rewrites FRACTION of each file in place (scattered 4 KiB pieces) and
//          announces them with their signatures inside: the subscriber fetches the changed blocks.
//   whole: the same, announced with --threshold above SIZE: no signature, every file fetched whole.
// Timed: from the start of `announce` until both trees are equal (every subscriber file has the
// publisher's size and mtime, polled every 50 ms, then confirmed by SHA-1 of every file). A
// long-running subscriber is started first (its queue declared and bound; ready: on stderr) and
// stopped with SIGTERM afterwards; its queue is then deleted. Bytes: what nginx sent (body bytes in its access log).
//   npx tsx scripts/bench-pump.ts [--files 20] [--size 64M] [--fraction 0.01] [--runs 1]
//                                 [--engine auto|zsync|js] [--json]
// --engine is the subscriber's sync engine; the announce side always uses its default (auto).
//   npx tsx scripts/bench-pump.ts --steady ...: version 1 applied first, version 2 timed (bench-pump-steady.ts).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { cpus, hostname, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { parseSize } from '../src/commands/flags.js';
import { startNginx, type NginxServer } from '../test/helpers/nginx.js';
import { startRabbitmq, type RabbitmqServer } from '../test/helpers/rabbitmq.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { CLI, arg, median, table, writeSeededFile } from './lib/bench.mjs';
import { rewriteScattered } from './lib/rewrite.js';

type Mode = 'delta' | 'whole';

if (process.argv.includes('--steady')) {
  await import('./bench-pump-steady.js');
  process.exit(0);
}

const files = Number(arg('--files', '20'));
const size = parseSize(arg('--size', '64M'), '--size');
const fraction = Number(arg('--fraction', '0.01'));
const runs = Number(arg('--runs', '1'));
const engine = arg('--engine', 'auto') as string;
const asJson = process.argv.includes('--json');
if (!Number.isInteger(files) || files < 1) throw new Error('--files expects a whole number >= 1');
if (size < 8192) throw new Error('--size expects at least 8k');
if (!(fraction >= 0 && fraction <= 1)) throw new Error('--fraction expects a number between 0 and 1');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs expects a whole number >= 1');
if (!['auto', 'zsync', 'js'].includes(engine)) throw new Error('--engine expects auto, zsync or js');

const names = Array.from({ length: files }, (_, i) => `file-${String(i).padStart(3, '0')}.bin`);
const totalBytes = files * size;

// ---------------------------------------------------------------------------------------------

function formatSize(n: number): string {
  for (const [unit, f] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= f && n % (f / 16) === 0) return `${+(n / f).toFixed(2)} ${unit}`;
  }
  return `${n} B`;
}

function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const m = pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m?.[1] ?? '?';
}

function debVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  // 1:25.2.3+dfsg-1 → 25.2.3; 3.10.8-1.1+deb12u1 → 3.10.8
  return r.status === 0 && r.stdout ? r.stdout.replace(/^\d+:/, '').replace(/[-+~].*$/, '') : '?';
}

async function sha1(path: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-1 of each name under dir, two files at a time. */
async function digests(dir: string): Promise<string[]> {
  const out: string[] = new Array(names.length);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      out[i] = await sha1(join(dir, names[i]!)).catch(() => 'missing');
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

/** Every regular file under dir (relative), zpump's own state folder left out. */
function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((rel) => rel.split('/')[0] !== '.zpump')
    .sort();
}

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number>;
  exited: () => boolean;
}

function startCli(args: string[], onLine?: (line: string) => void): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let pending = '';
  let done = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) onLine?.(line);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number>((resolve) => child.once('close', (code, signal) => {
    done = true;
    resolve(code ?? (signal ? 128 : 1));
  }));
  return { child, stdout: () => out, stderr: () => err, exit, exited: () => done };
}

async function stopCli(p: Proc | undefined): Promise<void> {
  if (!p || p.exited()) return;
  p.child.kill('SIGTERM');
  const killed = await Promise.race([p.exit.then(() => true), sleep(15_000).then(() => false)]);
  if (!killed) {
    p.child.kill('SIGKILL');
    await p.exit;
  }
}

interface Report {
  relPath: string;
  action: string;
  engine?: string;
  bytesReused?: number;
  bytesFetched?: number;
  seconds: number;
  fallback?: string;
  attempts?: number;
}

interface Outcome {
  mode: Mode;
  run: number;
  seconds: number;
  announceSeconds: number;
  nginxBytes: number;
  requests: number;
  reports: Report[];
  announced: Array<{ signature: string; engine?: string; seconds: number }>;
  notes: string[];
}

const countOf = (xs: Array<string | undefined>): string => {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x ?? '-', (m.get(x ?? '-') ?? 0) + 1);
  return [...m].map(([k, n]) => `${k}×${n}`).join(' ');
};

// ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'zpump-bench-pump-'));
const oldDir = join(dir, 'old');
const pub = join(dir, 'pub');
const subDir = (mode: Mode) => join(dir, `sub-${mode}`);
let rabbit: RabbitmqServer | undefined;
let nginx: NginxServer | undefined;
let subscriber: Proc | undefined;
let announcer: Proc | undefined;
let cleaned: Promise<void> | undefined;
const cleanup = () =>
  (cleaned ??= (async () => {
    await stopCli(announcer).catch(() => undefined);
    await stopCli(subscriber).catch(() => undefined);
    await nginx?.stop().catch((e: unknown) => console.error(`nginx stop: ${String(e)}`));
    await rabbit?.stop().catch((e: unknown) => console.error(`rabbitmq stop: ${String(e)}`));
    rmSync(dir, { recursive: true, force: true });
  })());
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

try {
  mkdirSync(oldDir);
  mkdirSync(pub);
  const log = (line: string) => { if (!asJson) process.stderr.write(`${line}\n`); };
  log(`bench-pump: making ${files} × ${formatSize(size)} in ${dir}, starting RabbitMQ and nginx`);
  const [rabbitmq] = await Promise.all([
    startRabbitmq(),
    (async () => {
      for (const [i, name] of names.entries()) {
        await sleep(1); // file by file, so that RabbitMQ's start goes on meanwhile
        writeSeededFile(join(oldDir, name), size, 1000 + i);
        copyFileSync(join(oldDir, name), join(pub, name));
        rewriteScattered(join(pub, name), size, fraction, 5000 + i);
      }
    })(),
  ]);
  rabbit = rabbitmq;
  nginx = await startNginx({ root: pub });
  const want = await digests(pub);
  const pubStat = names.map((n) => statSync(join(pub, n)));
  const olderMs = Math.min(...pubStat.map((s) => s.mtimeMs)) - 3600_000;
  if (new Set(want).size !== names.length) throw new Error('seeded files are not all different');
  const oldDigests = await digests(oldDir);
  if (oldDigests.some((d, i) => d === want[i])) throw new Error('a rewritten file equals its old version');

  /** The subscriber's tree at the old version: copies, their mtime older than the publisher's. */
  const prepare = (mode: Mode) => {
    const sub = subDir(mode);
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    for (const name of names) {
      copyFileSync(join(oldDir, name), join(sub, name));
      utimesSync(join(sub, name), olderMs / 1000, olderMs / 1000);
    }
    spawnSync('sync');
  };

  const runMode = async (mode: Mode, run: number): Promise<Outcome> => {
    const sub = subDir(mode);
    prepare(mode);
    await nginx!.clearLog();
    const reports: Array<Report & { at: number }> = [];
    const notes: string[] = [];
    subscriber = startCli(['subscribe', rabbit!.url, '--dir', sub, '--queue', `bench-${mode}`, '--engine', engine, '--json'], (line) => {
      try {
        reports.push({ ...(JSON.parse(line) as Report), at: performance.now() });
      } catch {
        notes.push(`subscriber stdout: ${line}`);
      }
    });
    const readyBy = Date.now() + 30_000;
    while (!/ready: applying/.test(subscriber.stderr())) {
      if (subscriber.exited() || Date.now() > readyBy) throw new Error(`subscriber not ready:\n${subscriber.stderr()}`);
      await sleep(20);
    }

    const t0 = performance.now();
    let announceEnd = 0;
    announcer = startCli([
      'announce', '--base-url', nginx!.url, '--root', pub, '--post', rabbit!.url, '--json',
      ...(mode === 'whole' ? ['--threshold', String(size + 1)] : []),
      ...names.map((n) => join(pub, n)),
    ]);
    const announceExit = announcer.exit.then((code) => {
      announceEnd = performance.now();
      return code;
    });

    // Cheap poll on size + mtime (the subscriber sets the announced mtime as it renames the
    // verified file into place), then the SHA-1s to be sure.
    const deadline = Date.now() + 120_000 + (totalBytes / 2e6) * 1000;
    let tEqual = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${mode}: trees still differ after ${((Date.now() - t0) / 1000).toFixed(0)} s\nsubscriber:\n${subscriber.stderr()}\nannounce:\n${announcer.stderr()}`);
      if (subscriber.exited()) throw new Error(`${mode}: the subscriber exited (${await subscriber.exit}):\n${subscriber.stderr()}`);
      if (announcer.exited() && (await announceExit) !== 0) throw new Error(`${mode}: announce failed (${await announceExit}):\n${announcer.stderr()}`);
      const placed = names.every((name, i) => {
        try {
          const s = statSync(join(sub, name));
          return s.size === pubStat[i]!.size && Math.abs(s.mtimeMs - pubStat[i]!.mtimeMs) <= 1;
        } catch {
          return false;
        }
      });
      if (placed) {
        const now = performance.now();
        const got = await digests(sub);
        if (got.every((d, i) => d === want[i])) {
          tEqual = now;
          break;
        }
        notes.push(`${mode}: sizes and mtimes matched but ${got.filter((d, i) => d !== want[i]).length} SHA-1(s) differed; polling on`);
      }
      await sleep(50);
    }
    const seconds = (tEqual - t0) / 1000;
    if ((await announceExit) !== 0) throw new Error(`${mode}: announce failed:\n${announcer.stderr()}`);
    const announceSeconds = (announceEnd - t0) / 1000;

    // Every message reported (and so acknowledged) before the subscriber goes: none is left to redeliver.
    const reportsBy = Date.now() + 15_000;
    while (reports.length < files && Date.now() < reportsBy) await sleep(20);
    if (reports.length < files) notes.push(`${mode}: only ${reports.length} of ${files} subscriber reports`);
    await stopCli(subscriber);
    const subErr = subscriber.stderr().split('\n').filter((l) => l.trim() && !/ready: applying/.test(l));
    notes.push(...subErr.map((l) => `${mode} subscriber: ${l}`));
    const annErr = announcer.stderr().split('\n').filter((l) => l.trim());
    notes.push(...annErr.map((l) => `${mode} announce: ${l}`));
    subscriber = undefined;
    // The queue is durable and bound to every announcement: gone, so that the other mode's messages
    // do not pile up in it for the next run.
    const conn = await amqp.connect(rabbit!.url);
    try {
      const ch = await conn.createChannel();
      const { messageCount } = await ch.deleteQueue(`bench-${mode}`);
      if (messageCount) notes.push(`${mode}: ${messageCount} message(s) still queued when the subscriber stopped`);
    } finally {
      await conn.close();
    }

    const extra = listTree(sub).filter((rel) => !names.includes(rel));
    if (extra.length) notes.push(`${mode}: left in the subscriber tree: ${extra.join(', ')}`);
    for (const r of reports) {
      if (r.fallback) notes.push(`${mode}: ${r.relPath}: fallback: ${r.fallback}`);
      if ((r.attempts ?? 1) > 1) notes.push(`${mode}: ${r.relPath}: ${r.attempts} attempts`);
      if (r.action !== mode) notes.push(`${mode}: ${r.relPath}: action ${r.action}`);
    }

    const entries = await nginx!.readLog();
    const announced = announcer.stdout().split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { signature: string; engine?: string; seconds: number });
    announcer = undefined;
    return {
      mode,
      run,
      seconds,
      announceSeconds,
      nginxBytes: entries.reduce((n, e) => n + e.bodyBytesSent, 0),
      requests: entries.length,
      reports,
      announced,
      notes,
    };
  };

  const outcomes: Outcome[] = [];
  for (let run = 1; run <= runs; run++) {
    const order: Mode[] = run % 2 === 1 ? ['delta', 'whole'] : ['whole', 'delta'];
    for (const mode of order) {
      log(`bench-pump: run ${run}/${runs}, ${mode}`);
      outcomes.push(await runMode(mode, run));
      rmSync(subDir(mode), { recursive: true, force: true });
    }
  }

  const of = (mode: Mode) => outcomes.filter((o) => o.mode === mode);
  const med = (mode: Mode, f: (o: Outcome) => number): number => median(of(mode).map(f));
  const rows = (['delta', 'whole'] as const).map((mode) => {
    const all = of(mode);
    const reports = all.flatMap((o) => o.reports);
    const last = all.at(-1)!;
    const sum = (o: Outcome, f: (r: Report) => number | undefined) => o.reports.reduce((n, r) => n + (f(r) ?? 0), 0);
    return {
      mode,
      's (announce → equal)': med(mode, (o) => o.seconds).toFixed(2),
      'announce s': med(mode, (o) => o.announceSeconds).toFixed(2),
      'MB fetched (nginx)': (med(mode, (o) => o.nginxBytes) / 1e6).toFixed(1),
      '% of data': ((100 * med(mode, (o) => o.nginxBytes)) / totalBytes).toFixed(2),
      requests: med(mode, (o) => o.requests),
      'MB fetched (subscriber)': (med(mode, (o) => sum(o, (r) => r.bytesFetched)) / 1e6).toFixed(1),
      'MB reused': (med(mode, (o) => sum(o, (r) => r.bytesReused)) / 1e6).toFixed(1),
      'subscriber actions': countOf(reports.filter((r) => r.relPath).map((r) => r.action)),
      'subscriber engine': countOf(reports.filter((r) => r.relPath).map((r) => r.engine)),
      'signatures (made by)': `${countOf(last.announced.map((a) => a.signature))}${last.announced.some((a) => a.engine) ? ` (${countOf(last.announced.filter((a) => a.engine).map((a) => a.engine))})` : ''}`,
    };
  });
  const ratio = (f: (o: Outcome) => number) => med('delta', f) / med('whole', f);
  const ratios = {
    bytes: ratio((o) => o.nginxBytes),
    seconds: ratio((o) => o.seconds),
    announceSeconds: ratio((o) => o.announceSeconds),
  };
  const notes = [...new Set(outcomes.flatMap((o) => o.notes))];
  const machine = {
    host: hostname(),
    cpu: cpus()[0]?.model.trim() ?? '?',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    zpump: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
    zsync: version('zsync', ['-V'], /zsync v?(\S+)/),
    nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
    rabbitmq: debVersion('rabbitmq-server'),
    erlang: debVersion('erlang-base'),
  };
  if (asJson) {
    console.log(JSON.stringify({ files, size, fraction, runs, engine, machine, outcomes, ratios }));
  } else {
    const what = runs === 1 ? 'one run of each mode' : `median of ${runs} runs`;
    console.log(
      `pump end to end, ${files} × ${formatSize(size)} seeded random, ${+(fraction * 100).toFixed(3)}% of each rewritten in scattered 4 KiB pieces; ` +
        `announce → RabbitMQ → subscribe (--engine ${engine}, long-running) → nginx, all on 127.0.0.1; ${what}\n` +
        `${machine.host}: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB; node ${machine.node}, zpump ${machine.zpump}, ` +
        `zsync ${machine.zsync}, nginx ${machine.nginx}, RabbitMQ ${machine.rabbitmq}, Erlang ${machine.erlang}\n` +
        `${table(rows)}\n` +
        `delta/whole: bytes ${ratios.bytes.toFixed(3)}, time ${ratios.seconds.toFixed(2)}, announce time ${ratios.announceSeconds.toFixed(2)}\n` +
        `(seconds: announce start → every subscriber file equal to the publisher's; announce s: the announce command alone, ` +
        `while the subscriber already works)` +
        (notes.length ? `\nnotes:\n${notes.map((n) => `  ${n}`).join('\n')}` : ''),
    );
  }
} finally {
  await cleanup();
}
