// Ranges from a local path or file: URL (NFS mounts included): plain positioned reads.

import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { fromSystemError } from '../errors.js';
import type { ByteRange, RangeChunk, RangeSource, ReadRangesOptions, TransferStats } from './types.js';

const PIECE = 1 << 20;

export function createFileSource(pathOrUrl: string): RangeSource {
  const path = pathOrUrl.startsWith('file:') ? fileURLToPath(pathOrUrl) : pathOrUrl;
  return {
    location: path,
    async readRanges(ranges: readonly ByteRange[], onChunk: (c: RangeChunk) => void | Promise<void>, options: ReadRangesOptions = {}): Promise<TransferStats> {
      let fh;
      try {
        fh = await open(path, 'r');
      } catch (error) {
        throw fromSystemError(error, 'cannot read the data', path);
      }
      const buf = new Uint8Array(PIECE);
      let delivered = 0;
      try {
        for (const r of ranges) {
          for (let at = r.start; at < r.end; ) {
            options.signal?.throwIfAborted();
            const { bytesRead } = await fh.read(buf, 0, Math.min(PIECE, r.end - at), at);
            if (bytesRead === 0) throw fromSystemError(new Error(`the file ends at ${at}, before the ${r.end} bytes the signature describes`), 'data too short', path);
            await onChunk({ offset: at, data: buf.subarray(0, bytesRead) });
            at += bytesRead;
            delivered += bytesRead;
            options.onProgress?.(delivered);
          }
        }
      } finally {
        await fh.close();
      }
      return { requests: ranges.length, bytesReceived: delivered };
    },
    async close() {},
  };
}
