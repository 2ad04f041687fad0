// Hand-made control files for the reading cases (spec 0.8, zsync 0.6.2's leniencies): a real
// signature of the data, made by zpump, then edited as text in its header or extended after its
// records, the way other generators or a careless hand would leave it.

import { makeControlBytes } from '../../src/backends/js.js';
import { BlockRecordWriter } from '../../src/engine/block-records.js';
import { createMd4 } from '../../src/engine/md4.js';
import type { StrongHashName } from '../../src/engine/strong-hash.js';
import { renderControlFile, type ControlFile } from '../../src/format/control-file.js';
import { zsyncmakeHashLengths, type HashLengths } from '../../src/format/hash-lengths.js';
import { readSignature } from '../../src/local/signature-reader.js';

export interface Edit {
  /** Replace each header line starting with this key (and ": "), or drop it when `line` is null. */
  key: string;
  line: string | null;
}

export interface ControlOptions {
  input: string;
  urls: string[];
  blockSize?: number;
  /** Spec 0.8 with this block hash; default zsync 0.6.2's format. */
  strongHash?: StrongHashName;
  edits?: Edit[];
  /** Extra header lines, before the empty line. */
  add?: string[];
  /** Bytes after the last record. */
  tail?: Uint8Array;
}

export async function controlFile(o: ControlOptions): Promise<Uint8Array> {
  const { bytes } = await makeControlBytes({
    input: o.input, blockSize: o.blockSize ?? 4096, urls: o.urls, filename: 'data.bin', includeMtime: true,
    ...(o.strongHash ? { spec08: { strongHash: o.strongHash } } : {}),
  });
  return edit(bytes, o.edits ?? [], o.add ?? [], o.tail);
}

/** A 0.6.2-format file whose Hash-Lengths zsyncmake would never choose (e.g. 1-byte weak sums). */
export async function controlFileWith(input: string, urls: string[], blockSize: number, hashLengths: HashLengths): Promise<Uint8Array> {
  const sig = await readSignature(input, { blockSize, workers: 0, hashLengths: () => hashLengths });
  return renderControlFile({ zsyncVersion: '0.6.2', filename: 'data.bin', blockSize, length: sig.length, hashLengths, urls, sha1: sig.sha1, extraHeaders: [], records: sig.records });
}

export function edit(bytes: Uint8Array, edits: Edit[], add: string[] = [], tail?: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes);
  const end = buf.indexOf('\n\n');
  let lines = buf.subarray(0, end).toString('latin1').split('\n');
  for (const e of edits) lines = lines.flatMap((l) => (l.startsWith(`${e.key}: `) ? (e.line === null ? [] : [e.line]) : [l]));
  lines.push(...add);
  return Buffer.concat([Buffer.from(lines.join('\n') + '\n\n', 'latin1'), buf.subarray(end + 2), Buffer.from(tail ?? [])]);
}

/** The parsed control file zsyncmake 0.6.2 would write for `data` at this block size, made in memory. */
export async function controlOf(data: Uint8Array, blockSize: number): Promise<ControlFile> {
  const hashLengths = zsyncmakeHashLengths(data.length, blockSize);
  const records = new Uint8Array(Math.ceil(data.length / blockSize) * (hashLengths.rsumBytes + hashLengths.checksumBytes));
  const w = new BlockRecordWriter(await createMd4(), blockSize, hashLengths, records, 0);
  w.update(data);
  w.finish();
  return { zsyncVersion: '0.6.2', blockSize, length: data.length, hashLengths, urls: [], extraHeaders: [], records };
}
