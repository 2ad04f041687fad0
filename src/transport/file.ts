// Ranges from a local path or file: URL (NFS mounts included): plain positioned reads.

import { constants, open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ZpumpError, fromSystemError } from '../errors.js';
import type { ByteRange, RangeChunk, RangeSource, ReadRangesOptions, TransferStats } from './types.js';

const PIECE = 1 << 20;

export function createFileSource(pathOrUrl: string): RangeSource {
  const path = pathOrUrl.startsWith('file:') ? fileURLToPath(pathOrUrl) : pathOrUrl;
  return {
    location: path,
    async readRanges(ranges: readonly ByteRange[], onChunk: (c: RangeChunk) => void | Promise<void>, options: ReadRangesOptions = {}): Promise<TransferStats> {
      let fh;
      try {
        // Non-blocking, and only regular files: a FIFO or a device named by a message (with
        // --allow-file) must neither hang the open nor stream without end.
        fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (error) {
        throw fromSystemError(error, 'cannot read the data', path);
      }
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw new ZpumpError('E_BAD_INPUT', `cannot read the data: ${path} is not a regular file`, { data: { path } });
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
