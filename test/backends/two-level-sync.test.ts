// Two-level messages (a coarse .zsync inline, a fine .zsync beside the data) synced by the CLI over
// a real nginx: every case of the sync matrix and edits on block boundaries end with the new file,
// fetching fine data only around what changed. Fallbacks and other transports:
// two-level-fallback.test.ts.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseControlFileHeader } from '../../src/format/control-file.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';
import { COARSE, FINE, OLD, concat, flipped, same, scattered, twoLevelEnv } from '../helpers/two-level.js';

const hasNginx = requireTool('nginx', 'nginx-light');

/** Bytes per record of a fine .zsync. */
function recordLength(fine: Uint8Array): number {
  const h = parseControlFileHeader(fine)!.control.hashLengths;
  return h.rsumBytes + h.checksumBytes;
}

describe.skipIf(!hasNginx)('two-level sync', () => {
  const env = twoLevelEnv();

  const matrix: Array<{ name: string; make(old: Uint8Array): { next: Uint8Array; seeds: Uint8Array[]; targetExists: boolean } }> = [
    { name: 'identical', make: (old) => ({ next: old, seeds: [], targetExists: true }) },
    { name: '1% scattered 4 KiB rewrites', make: (old) => ({ next: scattered(old, 0.01, 9), seeds: [], targetExists: true }) },
    { name: '16 bytes inserted near the start', make: (old) => ({ next: concat(old.subarray(0, 5000), seededBytes(16, 3), old.subarray(5000)), seeds: [], targetExists: true }) },
    { name: '1/16 appended', make: (old) => ({ next: concat(old, seededBytes(Math.floor(old.length / 16), 4)), seeds: [], targetExists: true }) },
    { name: 'truncated', make: (old) => ({ next: old.subarray(0, Math.floor(old.length * 0.75) + 123), seeds: [], targetExists: true }) },
    { name: 'entirely different', make: (old) => ({ next: seededBytes(old.length, 77), seeds: [], targetExists: true }) },
    { name: 'no local copy', make: (old) => ({ next: old, seeds: [], targetExists: false }) },
    { name: 'two seeds with half the blocks each', make: (old) => ({ next: flipped(old, 3 * COARSE + 100), seeds: [old.subarray(0, old.length / 2), old.subarray(old.length / 2)], targetExists: false }) },
  ];

  it.each(matrix.map((c, i) => [c.name, i] as const))('equals the new file: %s', async (name, i) => {
    const { next, seeds, targetExists } = matrix[i]!.make(OLD);
    const pub = await env.publish(`m${i}.bin`, next);
    const target = join(env.work, `m${i}.bin`);
    if (targetExists) await writeFile(target, OLD);
    const seedArgs: string[] = [];
    for (const [k, s] of seeds.entries()) {
      const p = join(env.work, `m${i}.seed${k}`);
      await writeFile(p, s);
      seedArgs.push('--seed', p);
    }
    const result = await env.syncJson(pub.message, target, seedArgs);
    expect(same(await readFile(target), next), name).toBe(true);
    if (name.startsWith('16 bytes inserted')) expect(result.signatureBytes).toBeLessThanOrEqual(4096 + 2 * (COARSE / FINE + 1) * recordLength(pub.fine) + 1000);
    if (targetExists || seeds.length > 0) {
      expect(result.twoLevel?.level).not.toBe('whole');
      expect(result.bytesFetched).toBeGreaterThanOrEqual(result.signatureBytes);
    }
    await env.noTemporaries();
  });

  it("applies announce's own two-level message (the publisher's coarse sizing and fine file)", async () => {
    const next = scattered(OLD, 0.005, 31);
    await writeFile(join(env.www, 'ann.bin'), next);
    const made = await runCli(['announce', '--base-url', env.nginx.url, 'ann.bin'], { cwd: env.www });
    expect(made.exitCode, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).zsync.fine).toBeDefined();
    const target = join(env.work, 'ann.bin');
    await writeFile(target, OLD);
    const result = await env.syncJson(made.stdout, target);
    expect(same(await readFile(target), next)).toBe(true);
    expect(result.twoLevel).toMatchObject({ level: 'fine' });
    expect(result.twoLevel.problems).toBeUndefined();
  });

  const edges: Array<[string, (old: Uint8Array) => Uint8Array]> = [
    ['a byte on a coarse block boundary', (old) => flipped(old, 6 * COARSE)],
    ['the last byte before a coarse boundary', (old) => flipped(old, 6 * COARSE - 1)],
    ['a byte on a fine block boundary', (old) => flipped(old, 9 * FINE)],
    ['the last partial block', (old) => flipped(old, old.length - 5)],
    ['grown across a coarse boundary', (old) => concat(old, seededBytes(COARSE - 777 + 3000, 5))],
    ['shrunk across a coarse boundary', (old) => old.subarray(0, old.length - 777 - 3000)],
    ['bytes deleted before a coarse boundary (everything after shifts)', (old) => concat(old.subarray(0, 2 * COARSE - 10), old.subarray(2 * COARSE + 90))],
    // Both coarse neighbours stay in place; the fine blocks in between moved by 100 bytes: only a slide around them finds them.
    ['100 bytes inserted and 100 deleted inside one coarse block', (old) => concat(old.subarray(0, 3 * COARSE + 1000), seededBytes(100, 6), old.subarray(3 * COARSE + 1000, 3 * COARSE + 60_000), old.subarray(3 * COARSE + 60_100))],
  ];
  it.each(edges.map(([n], i) => [n, i] as const))('edge: %s', async (name, i) => {
    const next = edges[i]![1](OLD);
    const pub = await env.publish(`e${i}.bin`, next);
    const target = join(env.work, `e${i}.bin`);
    await writeFile(target, OLD);
    const result = await env.syncJson(pub.message, target);
    expect(same(await readFile(target), next), name).toBe(true);
    // 'coarse' when the coarse scan alone found everything (a shrunk file's new last block).
    expect(result.twoLevel.problems, JSON.stringify(result.twoLevel)).toBeUndefined();
    // Only what changed, at fine granularity: far less than a coarse block per edit.
    const dataBytes = result.bytesFetched - result.signatureBytes;
    expect(dataBytes).toBeLessThan(Math.abs(next.length - OLD.length) + 4 * FINE + 2000);
    // Shifted data is found at the coarse level (a slide where neighbours disagree), so the fine
    // records of at most the two or three coarse blocks around the edit are read.
    expect(result.signatureBytes).toBeLessThanOrEqual(4096 + 3 * (COARSE / FINE + 1) * recordLength(pub.fine) + 1000);
  });

});
