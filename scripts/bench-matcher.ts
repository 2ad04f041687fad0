// The seed scan's matcher loop alone, on an in-memory buffer: no disk, no page cache, so its
// figures are steady where a whole sync's are not. A target of random blocks (synthetic records,
// as zsyncmake would size them) against an unrelated random seed: nothing matches, every byte
// costs a roll and a filter probe, and filter false hits cost a lookup.
//   npx tsx scripts/bench-matcher.ts [--target-size 1073741824] [--block 2048] [--seed-size 67108864] [--zeros]

import { createMd4 } from '../src/engine/md4.js';
import { BlockIndex } from '../src/engine/block-index.js';
import { SeedMatcher } from '../src/engine/matcher.js';
import type { ControlFile } from '../src/format/control-file.js';
import { zsyncmakeHashLengths } from '../src/format/hash-lengths.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function random(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    w[i] = s;
  }
  return out;
}

const targetSize = arg('--target-size', 1 << 30);
const B = arg('--block', 2048);
const seedSize = arg('--seed-size', 64 << 20);
const rounds = arg('--rounds', 3);
const h = zsyncmakeHashLengths(targetSize, B);
const N = Math.ceil(targetSize / B);
// --zeros: a target of zero blocks (all records alike), as in bench-sync's "zeros from a random seed".
const records = process.argv.includes('--zeros') ? new Uint8Array(N * (h.rsumBytes + h.checksumBytes)) : random(N * (h.rsumBytes + h.checksumBytes), 7);
const cf = { blockSize: B, length: targetSize, hashLengths: h, records } as ControlFile;
const t0 = performance.now();
const index = new BlockIndex(cf);
const built = performance.now() - t0;
const md4 = await createMd4();
const ctx = h.seqMatches * B;
const seed = random(seedSize + ctx, 99);
console.log(`target ${targetSize} B, ${N} blocks of ${B}, hash lengths ${h.seqMatches},${h.rsumBytes},${h.checksumBytes}; index built in ${built.toFixed(0)} ms`);
for (let r = 0; r < rounds; r++) {
  const m = new SeedMatcher(index, md4);
  const t = performance.now();
  const cpu = process.cpuUsage();
  m.scan(seed, 0, seedSize, () => undefined, 0);
  const ms = performance.now() - t;
  const user = process.cpuUsage(cpu).user / 1000; // ms on the CPU: steadier than wall time on a shared machine
  console.log(`round ${r}: ${((ms * 1e6) / seedSize).toFixed(2)} ns/byte wall, ${((user * 1e6) / seedSize).toFixed(2)} cpu, lookups ${m.work.lookups} (1/${(seedSize / Math.max(1, m.work.lookups)).toFixed(1)}), candidates ${m.work.candidates}, strong ${m.work.strongHashes}`);
}
