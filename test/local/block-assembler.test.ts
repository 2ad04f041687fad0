// Fetched bytes become verified blocks: whole blocks arriving in one piece are checked one by one
// and written together (one write per run, not one per block), blocks already held are skipped,
// and a block that fails its check stops the piece with the good blocks before it kept.

import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/engine/block-index.js';
import { createStrongHasher } from '../../src/engine/strong-hash.js';
import { BlockAssembler } from '../../src/local/block-assembler.js';
import { controlOf } from '../helpers/control-files.js';
import { seededBytes } from '../helpers/data.js';

const B = 2048;

async function setup(length: number) {
  const data = seededBytes(length, 9);
  const index = new BlockIndex(await controlOf(data, B));
  const out = new Uint8Array(length);
  const calls: string[] = [];
  const sink = {
    writeBlock: (id: number, buf: Uint8Array, pos: number) => { calls.push(`block ${id}`); out.set(buf.subarray(pos, pos + Math.min(B, length - id * B)), id * B); },
    writeAt: (offset: number, bytes: Uint8Array) => { calls.push(`at ${offset / B}+${Math.ceil(bytes.length / B)}`); out.set(bytes, offset); },
  };
  const known = new Uint8Array(index.count);
  const assembler = new BlockAssembler(index, await createStrongHasher('MD4'), sink, known, 'test');
  return { data, out, calls, known, assembler };
}

describe('BlockAssembler', () => {
  it('writes a run of whole blocks in one call, the short last block included', async () => {
    const { data, out, calls, known, assembler } = await setup(40 * B + 100);
    assembler.accept({ offset: 0, data: data.subarray(0, 32 * B) });
    assembler.accept({ offset: 32 * B, data: data.subarray(32 * B) });
    expect(calls).toEqual(['at 0+32', 'at 32+9']);
    expect(assembler.writes).toBe(2);
    expect(assembler.blocksWritten).toBe(41);
    expect(known.every((k) => k === 1)).toBe(true);
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
  });

  it('skips blocks already held and joins pieces split across chunks', async () => {
    const { data, out, calls, known, assembler } = await setup(16 * B);
    known[5] = 1;
    assembler.accept({ offset: 0, data: data.subarray(0, 9 * B + 7) }); // block 9 split
    assembler.accept({ offset: 9 * B + 7, data: data.subarray(9 * B + 7) });
    expect(calls).toEqual(['at 0+5', 'at 6+3', 'block 9', 'at 10+6']);
    out.set(data.subarray(5 * B, 6 * B), 5 * B); // block 5 was local
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
  });

  it('a bad block stops the piece; the good ones before it are written and known', async () => {
    const { data, calls, known, assembler } = await setup(8 * B);
    const sent = data.slice();
    sent[4 * B + 10] = sent[4 * B + 10]! ^ 1;
    expect(() => assembler.accept({ offset: 0, data: sent })).toThrow(/block 4 .*do not match/);
    expect(calls).toEqual(['at 0+4']);
    expect([...known]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
  });
});
