// No signature (a small file, or an announcement without one) or nothing local to reuse: fetch
// the file whole, check it against the announced identity, and rename it into place.

import { verifyIdentity } from '../local/identity-check.js';
import { OutputFile } from '../local/output-file.js';
import { openRangeSource, type OpenOptions } from '../transport/open.js';
import type { SyncResult } from './types.js';

export interface WholeDownloadRequest {
  dataUrl: string;
  target: string;
  size: number;
  /** A checkable identity (format/announcement checkableIdentity); none only when the operator accepted unverified files. */
  identity?: { method: 'sha512' | 'md5'; value: string };
  mtime?: number;
  transport?: OpenOptions;
  /** Called with the verified temporary file right before the rename (the subscriber re-checks the path there). */
  beforeCommit?: (tempPath: string) => Promise<void>;
  onProgress?: (phase: 'fetch', done: number, total: number) => void;
}

export async function wholeDownload(request: WholeDownloadRequest): Promise<SyncResult> {
  const sha512 = request.identity?.method === 'sha512' ? request.identity.value : undefined;
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
    // md5 is not hashed on the fly: one more read of what was written, before it may replace anything.
    if (request.identity?.method === 'md5') await verifyIdentity(out.path, request.identity, request.target);
    await request.beforeCommit?.(out.path);
    await out.commit(sha512 ? { sha512Base64: sha512 } : {}, request.mtime);
    return { engine: 'js', target: request.target, length: request.size, bytesReused: 0, bytesFetched, requests, verified: request.identity !== undefined };
  } catch (error) {
    await out.discard();
    throw error;
  }
}
