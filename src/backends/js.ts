// The TypeScript engine: zsyncmake's algorithm in-process.

import { renderControlFile, type ControlFile } from '../format/control-file.js';
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
  onProgress?: (bytesRead: number, total: number) => void;
}

/** zsyncmake in-process: the exact bytes zsyncmake 0.6.2 would write for this input. */
export async function makeControlBytes(request: ControlBytesRequest): Promise<{ bytes: Uint8Array; control: ControlFile }> {
  const sig = await readSignature(request.input, { blockSize: request.blockSize, workers: request.workers, onProgress: request.onProgress });
  const control: ControlFile = {
    zsyncVersion: '0.6.2',
    blockSize: sig.blockSize,
    length: sig.length,
    hashLengths: sig.hashLengths,
    urls: request.urls,
    sha1: sig.sha1,
    extraHeaders: [],
    records: sig.records,
  };
  if (request.filename !== undefined) {
    control.filename = request.filename;
    if (request.includeMtime) control.mtime = sig.mtime;
  }
  return { bytes: renderControlFile(control), control };
}

export function createJsBackend(options: JsBackendOptions = {}): Backend {
  return {
    name: 'js',
    async make(request: MakeRequest): Promise<MakeResult> {
      const { bytes, control: sig } = await makeControlBytes({ ...request, includeMtime: true, workers: options.workers });
      await writeVerifiedControlFile(request.output, async (handle) => { await handle.writeFile(bytes); });
      return { engine: 'js', output: request.output, length: sig.length, blockSize: sig.blockSize, records: Math.ceil(sig.length / sig.blockSize), signatureBytes: bytes.length, sha1: sig.sha1 ?? '' };
    },
    sync(request: SyncRequest): Promise<SyncResult> {
      return jsSync(request);
    },
  };
}
