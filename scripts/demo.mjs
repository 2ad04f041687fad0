#!/usr/bin/env node
// The newcomer's first run: the whole pump on embedded defaults — no broker, no server, all in a
// temp dir. A publisher tree with a seeded 256 MiB data set is announced to a spool (a coarse
// signature inside each message, a fine .zsync beside each large file); a subscriber applies the spool to its own tree (data URLs are file: here,
// hence --allow-file); 1% of the data is rewritten in place, announced again, and applied again:
// only the changed blocks travel. Prints what a user wants to see at each step.

import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CLI, writeSeededFile } from './lib/bench.mjs';

const TOTAL = Number(process.env.ZPUMP_DEMO_SIZE ?? 256 << 20);
const dir = mkdtempSync(join(tmpdir(), 'zpump-demo-'));
const pub = join(dir, 'publisher');
const sub = join(dir, 'subscriber');
const spool = join(dir, 'spool');
const MiB = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

const zpump = (...args) => {
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`zpump ${args.join(' ')} failed (exit ${run.status}):\n${run.stderr}`);
  return run;
};
const jsonLines = (text) => text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const files = (root) => readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
// The data: not the fine .zsync signatures announce writes beside large files, nor the
// subscriber's own .zpump/ folder (kept signatures, rejected messages).
const dataFiles = (root) => files(root).filter((p) => !p.endsWith('.zsync') && !relative(root, p).split('/').includes('.zpump'));
const sha1 = (path) => createHash('sha1').update(readFileSync(path)).digest('hex');

function announceAll(label) {
  const started = performance.now();
  const results = jsonLines(zpump('announce', '--json', '--base-url', `file://${pub}/`, '--root', pub, '--post', `spool:${spool}`, ...dataFiles(pub)).stdout);
  const signed = results.filter((r) => r.signature !== 'none');
  const twoLevel = signed.filter((r) => r.levels).length;
  const how = twoLevel ? `${signed.length} with a coarse signature inside and ${twoLevel} fine .zsync beside the file` : `${signed.length} with a signature inside`;
  console.log(`${label}: announced ${results.length} files to spool:${relative(dir, spool)} (${how}, ${results.length - signed.length} small ones sent whole) in ${((performance.now() - started) / 1000).toFixed(2)} s`);
}

function subscribeOnce(label) {
  const started = performance.now();
  const reports = jsonLines(zpump('subscribe', `spool:${spool}`, '--dir', sub, '--once', '--allow-file', '--json').stdout);
  const sum = (key) => reports.reduce((n, r) => n + (r[key] ?? 0), 0);
  const engines = [...new Set(reports.map((r) => r.engine).filter(Boolean))].join(', ');
  const actions = Object.entries(reports.reduce((m, r) => ({ ...m, [r.action]: (m[r.action] ?? 0) + 1 }), {})).map(([a, n]) => `${n} ${a}`).join(', ');
  console.log(`${label}: ${reports.length} messages applied (${actions}); ${MiB(sum('bytesReused'))} reused, ${MiB(sum('bytesFetched'))} fetched, ${engines} engine, ${((performance.now() - started) / 1000).toFixed(2)} s`);
  return sum('bytesFetched');
}

function compareTrees() {
  const a = dataFiles(pub).map((p) => [relative(pub, p), sha1(p)]).sort();
  const b = dataFiles(sub).map((p) => [relative(sub, p), sha1(p)]).sort();
  const same = JSON.stringify(a) === JSON.stringify(b);
  console.log(`  trees identical (SHA-1 of all ${a.length} files): ${same ? 'yes' : 'NO'}`);
  for (const [rel, hash] of a.filter(([r]) => !r.endsWith('.txt'))) console.log(`    ${hash}  ${rel}`);
  if (!same) process.exitCode = 1;
}

try {
  console.log(`zpump demo in ${dir}\n`);
  console.log(zpump('engines').stdout.trim().replace(/^/gm, '  '));
  // The data set: three large files and a few small ones, seeded so every run is the same.
  mkdirSync(join(pub, 'model', 'run12'), { recursive: true });
  mkdirSync(join(pub, 'obs'), { recursive: true });
  const large = [['model/run12/field.bin', TOTAL / 2], ['model/run12/field2.bin', TOTAL / 4], ['obs/radar.bin', TOTAL / 4 - 40_000]];
  large.forEach(([rel, size], i) => writeSeededFile(join(pub, rel), size, i + 1));
  for (let i = 0; i < 4; i++) writeSeededFile(join(pub, 'obs', `station-${i}.txt`), 10_000, 10 + i);
  console.log(`\npublisher tree: ${dataFiles(pub).length} files, ${MiB(TOTAL)}\n`);

  announceAll('1. first publication');
  subscribeOnce('2. subscriber, empty tree');
  compareTrees();

  // Rewrite 1% of each large file in place: 4 KiB records at scattered offsets.
  let edited = 0;
  for (const [rel, size] of large) {
    const fd = openSync(join(pub, rel), 'r+');
    const edits = Math.round((size * 0.01) / 4096);
    for (let i = 0; i < edits; i++) writeSync(fd, Buffer.alloc(4096, 0x5a + i), 0, 4096, Math.floor(((i + 0.5) / edits) * (size - 4096)));
    closeSync(fd);
    edited += edits * 4096;
  }
  console.log(`\n3. rewrote ${MiB(edited)} (1%) in place, in scattered 4 KiB records`);
  announceAll('4. second publication');
  const fetched = subscribeOnce('5. subscriber, old copies in place');
  compareTrees();
  console.log(`\nsecond round fetched ${MiB(fetched)} of ${MiB(TOTAL)}: ${((fetched / TOTAL) * 100).toFixed(1)}% of the data set.`);
  console.log('Next: the same over nginx and RabbitMQ (README, "A pump over HTTP and RabbitMQ").');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
