// The TypeScript engine: zsyncmake's algorithm in-process.

import { renderControlFile, type ControlFile } from '../format/control-file.js';
import { DIGEST_BYTES, type StrongHashName } from '../engine/strong-hash.js';
import { spec08HashLengths } from '../format/hash-lengths.js';
import { readSignature } from '../local/signature-reader.js';
import { writeVerifiedControlFile } from '../local/control-file-io.js';
import { jsSync } from './js-sync.js';
import type { Backend, MakeRequest, MakeResult, SyncRequest, SyncResult } from './types.js';

export interface JsBackendOptions {
  workers?: number;
}

export interface ControlBytesRequest {
  input: string;
  blockSize: number | ((length: number) => number);
  urls: string[];
  /** Omitted: no Filename and no MTime line (zsyncmake reading stdin). */
  filename?: string;
  includeMtime: boolean;
  workers?: number;
  /** Write format spec 0.8 (as upstream zsyncmake 0.7+) with this block hash, instead of 0.6.2's format. */
  spec08?: { strongHash: StrongHashName };
  /** Also the input's sha512 (base64) from the same read. */
  sha512?: boolean;
  onProgress?: (bytesRead: number, total: number) => void;
}

/**
 * zsyncmake in-process: the exact bytes zsyncmake 0.6.2 would write for this input, or with
 * `spec08` upstream zsyncmake 0.7+'s file: SHA-256 File-Hash instead of SHA-1, the whole digest
 * per block, Strong-Hash-Algorithm always written, and for MD4 a Safe: line that lets zsync 0.6.2
 * read it.
 */
export async function makeControlBytes(request: ControlBytesRequest): Promise<{ bytes: Uint8Array; control: ControlFile; sha512?: string }> {
  const strongHash = request.spec08?.strongHash;
  const sig = await readSignature(request.input, {
    blockSize: request.blockSize, workers: request.workers, onProgress: request.onProgress, ...(request.sha512 ? { sha512: true } : {}),
    ...(strongHash ? { strongHash, fileHash: 'sha256' as const, hashLengths: (length: number) => spec08HashLengths(length, DIGEST_BYTES[strongHash]) } : {}),
  });
  const control: ControlFile = {
    zsyncVersion: strongHash ? SPEC08_GENERATOR : '0.6.2',
    blockSize: sig.blockSize,
    length: sig.length,
    hashLengths: sig.hashLengths,
    urls: request.urls,
    ...(strongHash
      ? { safe: strongHash === 'MD4' ? 'File-Hash,Strong-Hash-Algorithm' : 'File-Hash', strongHash, fileHash: { algorithm: 'SHA-256' as const, hex: sig.sha256! } }
      : { sha1: sig.sha1 }),
    extraHeaders: [],
    records: sig.records,
  };
  if (request.filename !== undefined) {
    control.filename = request.filename;
    if (request.includeMtime) control.mtime = sig.mtime;
  }
  return { bytes: renderControlFile(control), control, ...(sig.sha512 ? { sha512: sig.sha512 } : {}) };
}

/** The first line's value in spec 0.8 files, as upstream's zsyncmake writes it (zsync-format.md §11). */
export const SPEC08_GENERATOR = '0.8.0';

export function createJsBackend(options: JsBackendOptions = {}): Backend {
  return {
    name: 'js',
    async make(request: MakeRequest): Promise<MakeResult> {
      const { bytes, control: sig, sha512 } = await makeControlBytes({ ...request, includeMtime: true, workers: options.workers, ...(request.strongHash ? { spec08: { strongHash: request.strongHash } } : {}) });
      await writeVerifiedControlFile(request.output, async (handle) => { await handle.writeFile(bytes); });
      return { engine: 'js', output: request.output, length: sig.length, blockSize: sig.blockSize, records: Math.ceil(sig.length / sig.blockSize), signatureBytes: bytes.length, sha1: sig.sha1 ?? '', ...(sig.fileHash ? { fileHash: `${sig.fileHash.algorithm}:${sig.fileHash.hex}`, strongHash: sig.strongHash } : {}), ...(sha512 ? { sha512 } : {}) };
    },
    sync(request: SyncRequest): Promise<SyncResult> {
      return jsSync(request);
    },
  };
}
