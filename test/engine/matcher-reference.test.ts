// The optimised matcher (chains without found blocks, filter rebuilds, repeated windows not
// hashed again, uniform stretches skipped) against a plain transcription of the same rules
// (zsync-format.md §6.3, plus the last block accepted alone): the same blocks from the same seed
// offsets, on seeds mixing random data, zero and fill runs, short periods and shifted copies.

import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { SeedMatcher } from '../../src/engine/matcher.js';
import { createMd4, md4Padded, type Md4 } from '../../src/engine/md4.js';
import { rollWeakSum, weakSum } from '../../src/engine/rsum.js';
import { lcg, seededBytes } from '../helpers/data.js';
import { controlOf } from '../helpers/control-files.js';

/** The rules, one window at a time, every block a candidate: slow and obviously right. */
function reference(index: BlockIndex, md4: Md4, buf: Uint8Array, size: number): Array<[number, number]> {
  const B = index.blockSize;
  const N = index.count;
  const seq2 = index.seqMatches === 2;
  const known = new Uint8Array(N);
  const found: Array<[number, number]> = [];
  const take = (id: number, at: number): void => { known[id] = 1; found.push([id, at]); };
  let next = -1;
  let x = 0;
  let at = -2; // where r0, r1 were last computed
  let r0 = 0;
  let r1 = 0;
  while (x < size) {
    if (at === x - 1) {
      r0 = rollWeakSum(r0, buf[x - 1]!, buf[x - 1 + B]!, Math.log2(B));
      r1 = rollWeakSum(r1, buf[x - 1 + B]!, buf[x - 1 + 2 * B]!, Math.log2(B));
    } else {
      r0 = weakSum(buf, x, x + B);
      r1 = weakSum(buf, x + B, x + 2 * B);
    }
    at = x;
    const s0 = r0 & index.mask;
    if (next >= 0) {
      const id = next;
      next = -1;
      if (index.weak[id] === s0 && !known[id] && index.strongMatches(id, md4Padded(md4, buf, x, x + B, B))) {
        take(id, x);
        next = id + 1 < N && !known[id + 1] ? id + 1 : -1;
        x += B;
        continue;
      }
    }
    const s1 = seq2 ? r1 & index.mask : 0;
    let last = -1;
    for (let id = 0; id < N; id++) {
      if (index.weak[id] !== s0 || known[id]) continue;
      const pair = seq2 && id + 1 < N;
      if (pair && index.weak[id + 1] !== s1) continue;
      if (!index.strongMatches(id, md4Padded(md4, buf, x, x + B, B))) continue;
      if (pair && !index.strongMatches(id + 1, md4Padded(md4, buf, x + B, x + 2 * B, B))) continue;
      take(id, x);
      if (pair && !known[id + 1]) take(id + 1, x + B);
      last = id;
    }
    if (last >= 0) {
      const span = seq2 && last + 1 < N ? 2 : 1;
      next = seq2 && last + span < N && !known[last + span] ? last + span : -1;
      x += span * B;
    } else x++;
  }
  return found;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function periodic(n: number, period: Uint8Array): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = period[i % period.length]!;
  return out;
}

describe('optimised matcher = the plain rules', () => {
  const cases: Array<[string, Uint8Array, Uint8Array, number]> = [];
  {
    const B = 512;
    const r = seededBytes(40 * B, 1);
    const target = concat(r.subarray(0, 5 * B), new Uint8Array(12 * B), r.subarray(5 * B, 9 * B), new Uint8Array(3 * B).fill(7), periodic(6 * B, seededBytes(3, 2)), r.subarray(9 * B, 20 * B), new Uint8Array(1000));
    const seed = concat(new Uint8Array(700), target.subarray(0, 9 * B + 100), new Uint8Array(20 * B), new Uint8Array(B).fill(7), target.subarray(14 * B, 40 * B), periodic(9 * B, seededBytes(3, 2)), r.subarray(0, 3 * B));
    cases.push(['runs, fills and a period of 3 at 512-byte blocks', target, seed, B]);
  }
  {
    const B = 2048;
    const v = lcg(30 * B + 77, 3);
    const seed = concat(v.subarray(0, 4000), seededBytes(33, 4), v.subarray(4000, 20 * B), new Uint8Array(5 * B), v.subarray(20 * B));
    cases.push(['an insertion and a zero run at 2 KiB blocks', concat(v, new Uint8Array(4 * B)), seed, B]);
  }
  {
    const B = 64 * 1024; // the weak sum's §11 blind spot: uniform runs look like zeros
    const target = concat(seededBytes(B, 5), new Uint8Array(5 * B), new Uint8Array(B).fill(2), seededBytes(B + 5, 6));
    // Short enough stretches for the plain rules to hash at each of their windows in time.
    const seed = concat(new Uint8Array(B + 300).fill(4), seededBytes(B, 5), new Uint8Array(2 * B + 999), periodic(2 * B + 50, seededBytes(16, 7)), new Uint8Array(B).fill(2), seededBytes(B + 5, 6));
    cases.push(['uniform runs of other values and a period of 16 at 64 KiB blocks', target, seed, B]);
  }
  {
    // A window that matched nothing, and a later one with the same weak sums and the same first,
    // middle and last bytes: only comparing every byte tells them apart.
    const B = 64 * 1024;
    const near = new Uint8Array(B);
    near[1000] = 1;
    near[B - 1000] = 1; // (B - 1000) + 1000 ≡ 0 mod 2^16: the weak sum's b is a zero block's
    const target = concat(new Uint8Array(4 * B), seededBytes(B, 8));
    const seed = concat(near, new Uint8Array(B), seededBytes(3000, 9), new Uint8Array(2 * B), seededBytes(B, 8));
    cases.push(['a near-repeat of a window that matched nothing', target, seed, B]);
  }
  {
    // A stretch of period 1 (uniform 2s: a zero block's weak sums at 64 KiB) that matched nothing,
    // then zeros, which do match: the period must be checked byte by byte as it is followed.
    const B = 64 * 1024;
    const target = concat(new Uint8Array(4 * B), seededBytes(B, 10));
    const seed = concat(new Uint8Array(2 * B + 10).fill(2), new Uint8Array(3 * B), seededBytes(B, 10));
    cases.push(['a uniform stretch that matched nothing, then zeros that match', target, seed, B]);
  }
  {
    // A uniform seed against a target of zero blocks ending in a zero block, which is looked up
    // alone wherever the next window has changed: the end of each run (this once hashed at every
    // byte of it), then zeros that match.
    const B = 64 * 1024;
    const target = new Uint8Array(3 * B + 100);
    const seed = concat(new Uint8Array(B + 2000).fill(2), seededBytes(B, 11), new Uint8Array(B + 500));
    cases.push(['a uniform seed against zero blocks, the last one short', target, seed, B]);
  }
  for (const [name, target, seed, B] of cases) {
    it(name, async () => {
      const index = new BlockIndex(await controlOf(target, B));
      const ctx = index.seqMatches * B;
      const buf = new Uint8Array(seed.length + ctx);
      buf.set(seed);
      const expected = reference(new BlockIndex(await controlOf(target, B)), await createMd4(), buf, seed.length);
      const matcher = new SeedMatcher(index, await createMd4());
      const found: Array<[number, number]> = [];
      // In pieces, as the file scan feeds it.
      for (let base = 0; base < seed.length; ) {
        const end = Math.min(seed.length, base + 3 * ctx + 123);
        const piece = buf.slice(base, end + ctx);
        base += matcher.scan(piece, 0, end - base, (id, pos) => found.push([id, base + pos]), base);
      }
      expect(expected.length).toBeGreaterThan(0);
      expect(found).toEqual(expected);
    });
  }
});
