// The benchmarks' everyday change: a fraction of a file rewritten in place, in 4 KiB pieces of
// other seeded bytes, evenly scattered and not block-aligned.

import { closeSync, openSync, writeSync } from 'node:fs';
import { seededBytes } from '../../test/helpers/data.js';

export const PIECE = 4096;

export function rewriteScattered(path: string, size: number, fraction: number, seed: number): void {
  const edits = Math.max(1, Math.round((size * fraction) / PIECE));
  const patch = seededBytes(PIECE * Math.min(edits, 64), seed);
  const fd = openSync(path, 'r+');
  try {
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(((i + 0.37) / edits) * (size - PIECE));
      writeSync(fd, patch, (i % 64) * PIECE, PIECE, at);
    }
  } finally {
    closeSync(fd);
  }
}
