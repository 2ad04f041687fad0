// How the subscriber's new file should start when the kept signature says which blocks are
// unchanged (backends/cached-sync): a clone of the old copy (FICLONE: reflink, else
// copy_file_range) with the changed blocks written over it, or the plain start (unchanged blocks
// read and written in file order). The whole reuse sync is timed, fetch from a file:// URL (no
// network) and the sha512 check included; the two starts alternate in one process, medians.
//   npx tsx scripts/bench-start.ts [--size 64M] [--fraction 0.01] [--runs 5] [--dir PARENT]

import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeControlBytes } from '../src/backends/js.js';
import { cachedSync, planFromPrevious, type StartMode } from '../src/backends/cached-sync.js';
import { parseControlFile } from '../src/format/control-file.js';
import { parseSize } from '../src/commands/flags.js';
import { seededBytes } from '../test/helpers/data.js';
// @ts-expect-error plain JS helper shared with the other benchmarks
import { arg, median, writeSeededFile } from './lib/bench.mjs';

const size = parseSize(arg('--size', '64M'), '--size');
const fraction = Number(arg('--fraction', '0.01'));
const runs = Number(arg('--runs', '5'));
const parent = arg('--dir', tmpdir()) as string;
const dir = mkdtempSync(join(parent, 'zpump-bench-start-'));
try {
  const oldPath = join(dir, 'old.bin');
  const newPath = join(dir, 'new.bin');
  writeSeededFile(oldPath, size, 7);
  const next = readFileSync(oldPath);
  const edits = Math.max(1, Math.round((size * fraction) / 4096));
  const patch = seededBytes(4096, 9);
  for (let i = 0; i < edits; i++) next.set(patch, Math.floor(((i + 0.37) / edits) * (size - 4096)));
  writeFileSync(newPath, next);
  const sha512 = createHash('sha512').update(next).digest('base64');
  const make = async (input: string) => parseControlFile((await makeControlBytes({ input, blockSize: 4096, urls: ['new.bin'], filename: 'x', includeMtime: false })).bytes);
  const [previous, control] = [await make(oldPath), await make(newPath)];
  const plan = planFromPrevious(previous, control);
  if ('why' in plan) throw new Error(plan.why);
  const times: Record<StartMode, number[]> = { clone: [], 'copy-blocks': [] };
  for (let r = 0; r <= runs; r++) {
    for (const start of (r % 2 ? ['clone', 'copy-blocks'] : ['copy-blocks', 'clone']) as StartMode[]) {
      const target = join(dir, `target-${start}.bin`);
      copyFileSync(oldPath, target);
      const t0 = performance.now();
      await cachedSync({ control, controlLocation: 'x', dataUrl: pathToFileURL(newPath).href, target, seeds: [target], sha512 }, plan, start);
      if (r > 0) times[start].push((performance.now() - t0) / 1000); // round 0 warms up
    }
  }
  console.log(`reuse sync of ${size} bytes, ${(100 * plan.missingBytes / size).toFixed(2)}% fetched (file://), in ${parent}; median of ${runs}`);
  for (const start of ['clone', 'copy-blocks'] as const) console.log(`  ${start.padEnd(12)} ${median(times[start]).toFixed(3)} s  (${times[start].map((t) => t.toFixed(2)).join(' ')})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
