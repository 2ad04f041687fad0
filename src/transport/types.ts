// "Give me these byte ranges" — the one interface the sync engine sees, whatever the scheme
// (http/https, sftp, file/path). The engine verifies every block itself, so a transport only
// has to deliver bytes at the right offsets.

/** Half-open byte range [start, end). Offsets are plain numbers: exact up to 2^53. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A piece of one requested range. Pieces of one range arrive in ascending order. */
export interface RangeChunk {
  offset: number;
  data: Uint8Array; // valid only during the callback; copy it to keep it
}

export interface TransferStats {
  requests: number; // requests sent (HTTP requests, SFTP reads batches, file opens)
  bytesReceived: number; // payload bytes received, including bytes discarded (e.g. a 200 body)
}

export interface ReadRangesOptions {
  signal?: AbortSignal;
  /** Called after each delivered chunk with the running total of delivered bytes. */
  onProgress?: (deliveredBytes: number) => void;
}

export interface RangeSource {
  /** Where the data comes from, for messages (credentials stripped). */
  readonly location: string;
  /**
   * Deliver every byte of `ranges` (sorted by start, non-overlapping, within the file) exactly
   * once through `onChunk`, then resolve with what it cost. Retries transient failures itself
   * (bounded), resuming a range where it broke off; throws a ZpumpError when it gives up.
   */
  readRanges(ranges: readonly ByteRange[], onChunk: (chunk: RangeChunk) => void | Promise<void>, options?: ReadRangesOptions): Promise<TransferStats>;
  /** Release connections. */
  close(): Promise<void>;
}
