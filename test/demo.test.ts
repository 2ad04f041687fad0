// The README's first command: the demo must keep working as the pump changes (it once announced
// the fine .zsync sidecars as data and reported trees that differ).

import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DEMO = fileURLToPath(new URL('../scripts/demo.mjs', import.meta.url));

describe('npm run demo', () => {
  it('publishes, applies, rewrites 1% and applies again, with identical trees and a small second fetch', async () => {
    const run = await execa(process.execPath, [DEMO], { env: { ZPUMP_DEMO_SIZE: String(16 << 20) }, reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    const verdicts = [...run.stdout.matchAll(/trees identical \(SHA-1 of all (\d+) files\): (\w+)/g)];
    expect(verdicts.map((m) => [m[1], m[2]])).toEqual([['7', 'yes'], ['7', 'yes']]);
    const share = Number(/fetched [\d.]+ MiB of [\d.]+ MiB: ([\d.]+)% of the data set/.exec(run.stdout)?.[1]);
    expect(share).toBeGreaterThan(0);
    expect(share).toBeLessThan(20);
  });
});
