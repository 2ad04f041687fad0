#!/usr/bin/env node
// The newcomer's first run: no broker, no server, loopback only, all in a temp dir.
// Makes a seeded data set, signs it with every engine here, checks they agree byte for byte,
// rewrites 1% of one file in place, signs again and shows how many blocks changed — the blocks
// a subscriber would fetch.

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, writeSeededFile } from './lib/bench.mjs';

const SIZE = Number(process.env.ZPUMP_DEMO_SIZE ?? 256 << 20);
const dir = mkdtempSync(join(tmpdir(), 'zpump-demo-'));
const zpump = (...args) => {
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`zpump ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
  return run.stdout;
};
try {
  console.log(`zpump demo in ${dir}`);
  writeSeededFile(join(dir, 'field.bin'), SIZE, 1);
  writeSeededFile(join(dir, 'small.txt'), 10_000, 2);
  console.log(zpump('engines').trim());

  const engines = JSON.parse(zpump('engines', '--json')).engines.filter((e) => e.available && e.name !== 'zsync').map((e) => (e.name === 'zsyncmake' ? 'zsync' : e.name));
  for (const engine of engines) {
    const big = JSON.parse(zpump('make', '--json', '--engine', engine, '-b', '64k', '-o', `field.${engine}.zsync`, 'field.bin'));
    const small = JSON.parse(zpump('make', '--json', '--engine', engine, 'small.txt'));
    console.log(`make --engine ${engine}: ${big.records} blocks, ${big.signatureBytes} byte signature for ${big.length} bytes in ${big.seconds} s; small.txt: ${small.skipped ? 'below threshold, sent whole' : 'signed'}`);
  }
  if (engines.length === 2) {
    const same = readFileSync(join(dir, 'field.js.zsync')).equals(readFileSync(join(dir, 'field.zsync.zsync')));
    console.log(`js and zsyncmake signatures identical: ${same ? 'yes' : 'NO'}`);
    if (!same) process.exitCode = 1;
  }

  // A subscriber's copy of today's version.
  mkdirSync(join(dir, 'subscriber'));
  copyFileSync(join(dir, 'field.bin'), join(dir, 'subscriber', 'field.bin'));

  // Rewrite 1% of the file in place: 4 KiB records at scattered offsets.
  const fd = openSync(join(dir, 'field.bin'), 'r+');
  const patch = Buffer.alloc(4096, 0x5a);
  const edits = Math.round((SIZE * 0.01) / 4096);
  for (let i = 0; i < edits; i++) writeSync(fd, patch, 0, patch.length, Math.floor(((i + 0.5) / edits) * (SIZE - 4096)));
  closeSync(fd);
  zpump('make', '--engine', 'js', '-b', '64k', '-o', 'field.new.zsync', 'field.bin');
  const before = JSON.parse(zpump('inspect', '--json', 'field.js.zsync'));
  const after = JSON.parse(zpump('inspect', '--json', 'field.new.zsync'));
  const recLen = before.hashLengths.rsumBytes + before.hashLengths.checksumBytes;
  const a = readFileSync(join(dir, 'field.js.zsync')).subarray(-before.recordBytes);
  const b = readFileSync(join(dir, 'field.new.zsync')).subarray(-after.recordBytes);
  let changed = 0;
  for (let i = 0; i < before.blocks; i++) if (!a.subarray(i * recLen, (i + 1) * recLen).equals(b.subarray(i * recLen, (i + 1) * recLen))) changed++;
  console.log(`after ${edits} scattered 4 KiB rewrites: ${changed} of ${before.blocks} blocks changed (${((changed / before.blocks) * 100).toFixed(1)}%)`);

  // The subscriber brings its copy up to date from the new signature (data from a local path here).
  const synced = JSON.parse(zpump('sync', '--json', '--engine', 'js', '--url', join(dir, 'field.bin'), 'field.new.zsync', join('subscriber', 'field.bin')));
  const sha = (p) => createHash('sha1').update(readFileSync(p)).digest('hex');
  const inSync = sha(join(dir, 'field.bin')) === sha(join(dir, 'subscriber', 'field.bin'));
  console.log(`sync (${synced.engine} engine): ${(synced.bytesReused / 2 ** 20).toFixed(1)} MiB reused, ${(synced.bytesFetched / 2 ** 20).toFixed(1)} MiB fetched of ${SIZE >> 20} MiB in ${synced.seconds} s; copies identical: ${inSync ? 'yes' : 'NO'}`);
  if (!inSync) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
