// The file being rebuilt: a temporary file beside the target, written block by block at its
// offset, checked against the control file's SHA-1, and only then renamed over the target with
// the control file's MTime. On any failure the target is untouched and the temporary removed.

import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import { createTempFile, removeStaleTemps, type TempFile } from './atomic-file.js';

export class OutputFile {
  private constructor(
    readonly target: string,
    private readonly temp: TempFile,
    readonly length: number,
    readonly blockSize: number,
  ) {}

  static async create(target: string, length: number, blockSize: number): Promise<OutputFile> {
    await removeStaleTemps(target);
    const temp = await createTempFile(target);
    try {
      await temp.handle.truncate(length);
    } catch (error) {
      await temp.discard();
      throw fromSystemError(error, 'cannot size the output file', temp.path);
    }
    return new OutputFile(target, temp, length, blockSize);
  }

  get path(): string {
    return this.temp.path;
  }

  /** Write block `id` from buf[pos, ...); the last block is cut at the file's end. */
  writeBlock(id: number, buf: Uint8Array, pos: number): void {
    const offset = id * this.blockSize;
    const n = Math.min(this.blockSize, this.length - offset);
    try {
      writeSync(this.temp.handle.fd, buf, pos, n, offset);
    } catch (error) {
      throw fromSystemError(error, 'cannot write the output file', this.temp.path);
    }
  }

  /** Write bytes at an offset (a whole-file download). */
  writeAt(offset: number, data: Uint8Array): void {
    try {
      writeSync(this.temp.handle.fd, data, 0, data.length, offset);
    } catch (error) {
      throw fromSystemError(error, 'cannot write the output file', this.temp.path);
    }
  }

  async digest(algorithm: 'sha1' | 'sha512', encoding: 'hex' | 'base64'): Promise<string> {
    const hash = createHash(algorithm);
    const buf = new Uint8Array(4 << 20);
    for (let offset = 0; offset < this.length; ) {
      const { bytesRead } = await this.temp.handle.read(buf, 0, Math.min(buf.length, this.length - offset), offset);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      offset += bytesRead;
    }
    return hash.digest(encoding);
  }

  /** Verify, then rename over the target. */
  async commit(expected: { sha1?: string; sha512Base64?: string }, mtime?: number): Promise<void> {
    if (expected.sha1 !== undefined) {
      const got = await this.digest('sha1', 'hex');
      if (got !== expected.sha1) {
        throw new ZpumpError('E_VERIFY', `the rebuilt ${this.target} has SHA-1 ${got}, the control file says ${expected.sha1}: the data on the server does not match its signature (republished since?); the target was left unchanged`, { data: { expected: expected.sha1, actual: got } });
      }
    }
    if (expected.sha512Base64 !== undefined) {
      const got = await this.digest('sha512', 'base64');
      if (got !== expected.sha512Base64) {
        throw new ZpumpError('E_VERIFY', `the downloaded ${this.target} does not match the announced sha512 identity; the target was left unchanged`, { data: { expected: expected.sha512Base64, actual: got } });
      }
    }
    await this.temp.handle.sync().catch(() => undefined);
    if (mtime !== undefined) await utimes(this.temp.path, mtime, mtime).catch(() => undefined);
    await this.temp.commit();
  }

  async discard(): Promise<void> {
    await this.temp.discard();
  }
}
