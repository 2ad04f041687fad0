// A streaming parser for multipart/byteranges bodies (RFC 7233 §4.1). Part bodies are passed on
// as they arrive, never buffered whole; only boundary lines and part headers are collected.
// Lenient where servers differ: any number of CRLFs (or none) before a boundary, quoted or bare
// boundary parameter, header names in any case. zsync 0.6.2 loops forever on some of these.

import { ZpumpError } from '../errors.js';

const bad = (message: string): ZpumpError => new ZpumpError('E_HTTP', `malformed multipart/byteranges response: ${message}`);

export interface ContentRange {
  start: number;
  end: number; // exclusive
  total?: number;
}

export function parseContentRange(value: string | undefined): ContentRange | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]) + 1;
  if (end <= start) return undefined;
  return m[3] === '*' ? { start, end } : { start, end, total: Number(m[3]) };
}

export function boundaryFrom(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/byteranges/i.test(contentType)) return undefined;
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

type State = 'boundary' | 'headers' | 'body' | 'done';

export class MultipartParser {
  private state: State = 'boundary';
  private pending: Buffer = Buffer.alloc(0);
  private readonly delimiter: Buffer;
  private offset = 0; // file offset of the next body byte
  private left = 0; // body bytes still expected in this part

  constructor(boundary: string, private readonly onPart: (offset: number, bytes: Uint8Array) => void | Promise<void>) {
    this.delimiter = Buffer.from(`--${boundary}`);
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  async push(chunk: Uint8Array): Promise<void> {
    let data: Buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (data.length > 0 && this.state !== 'done') {
      if (this.state === 'body') {
        const n = Math.min(this.left, data.length);
        await this.onPart(this.offset, data.subarray(0, n));
        this.offset += n;
        this.left -= n;
        data = data.subarray(n);
        if (this.left === 0) this.state = 'boundary';
        continue;
      }
      this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
      data = Buffer.alloc(0);
      data = this.parseHead();
      if (this.pending.length > 16384) throw bad('a boundary or part header longer than 16 KiB');
    }
  }

  end(): void {
    if (this.state !== 'done') throw bad(this.state === 'body' ? `the body ended ${this.left} bytes into a part` : 'the body ended before the closing boundary');
  }

  // Consume boundary lines and part headers from `pending`; return whatever body bytes follow.
  private parseHead(): Buffer {
    for (;;) {
      const p = this.pending;
      if (this.state === 'boundary') {
        let i = 0;
        while (i < p.length && (p[i] === 0x0d || p[i] === 0x0a)) i++;
        if (p.length - i < this.delimiter.length + 2) { this.pending = p.subarray(i); return Buffer.alloc(0); }
        if (!p.subarray(i, i + this.delimiter.length).equals(this.delimiter)) throw bad('expected a boundary line');
        const after = i + this.delimiter.length;
        if (p[after] === 0x2d && p[after + 1] === 0x2d) { this.state = 'done'; this.pending = Buffer.alloc(0); return Buffer.alloc(0); }
        this.state = 'headers';
        this.pending = p.subarray(after);
        continue;
      }
      if (this.state === 'headers') {
        const end = p.indexOf('\r\n\r\n');
        const endLf = p.indexOf('\n\n');
        const stop = end >= 0 && (endLf < 0 || end < endLf) ? end + 4 : endLf >= 0 ? endLf + 2 : -1;
        if (stop < 0) return Buffer.alloc(0);
        const headers = p.subarray(0, stop).toString('latin1');
        const m = /^content-range:\s*(.+?)\s*$/im.exec(headers);
        const range = parseContentRange(m?.[1]);
        if (!range) throw bad('a part without a valid Content-Range header');
        this.offset = range.start;
        this.left = range.end - range.start;
        this.state = 'body';
        const rest = p.subarray(stop);
        this.pending = Buffer.alloc(0);
        return rest;
      }
      return Buffer.alloc(0);
    }
  }
}
