// No signature (a small file, or an announcement without one) or nothing local to reuse: fetch
// the file whole, check it against the announced identity, and rename it into place.

import type { Identity } from '../format/announcement.js';
import { OutputFile } from '../local/output-file.js';
import { openRangeSource, type OpenOptions } from '../transport/open.js';
import type { SyncResult } from './types.js';

export interface WholeDownloadRequest {
  dataUrl: string;
  target: string;
  size: number;
  identity?: Identity;
  mtime?: number;
  transport?: OpenOptions;
  onProgress?: (phase: 'fetch', done: number, total: number) => void;
}

export async function wholeDownload(request: WholeDownloadRequest): Promise<SyncResult> {
  // Other v03 methods (md5, arbitrary, ...) are accepted but cannot be checked here.
  const sha512 = request.identity?.method.toLowerCase() === 'sha512' ? request.identity.value : undefined;
  const out = await OutputFile.create(request.target, request.size, 1 << 20, { sha512: sha512 !== undefined });
  try {
    let requests = 0;
    let bytesFetched = 0;
    if (request.size > 0) {
      const source = await openRangeSource(request.dataUrl, request.transport);
      try {
        const stats = await source.readRanges([{ start: 0, end: request.size }], (chunk) => out.writeAt(chunk.offset, chunk.data), {
          onProgress: (done) => request.onProgress?.('fetch', done, request.size),
        });
        requests = stats.requests;
        bytesFetched = stats.bytesReceived;
      } finally {
        await source.close();
      }
    }
    await out.commit(sha512 ? { sha512Base64: sha512 } : {}, request.mtime);
    return { engine: 'js', target: request.target, length: request.size, bytesReused: 0, bytesFetched, requests, verified: sha512 !== undefined };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
