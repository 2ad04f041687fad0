// Downloads running at once share one count of bytes received: four streams of 5 MiB each ask for
// two minor collections at 8 MiB, where four separate counts would ask for none (and let 4 × 8 MiB pile up).

import { describe, expect, it } from 'vitest';
import { reclaimer, reclaimStats } from '../../src/transport/reclaim.js';

describe('reclaimer', () => {
  it('counts the bytes of every download together', () => {
    const streams = Array.from({ length: 4 }, () => reclaimer(8 << 20));
    const before = reclaimStats.collections;
    for (let mib = 0; mib < 5; mib++) for (const received of streams) received(1 << 20);
    expect(reclaimStats.collections - before).toBe(2);
  });
});
