// The file being rebuilt: a temporary file beside the target, written block by block at its
// offset, checked against the control file's SHA-1, and only then renamed over the target with
// the control file's MTime. On any failure the target is untouched and the temporary removed.
// Hashes are fed while the bytes are written in file order (a matching seed, a whole download,
// an append), so the final check reads back only what came after the first gap.

import { createHash, type Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import { createTempFile, removeStaleTemps, type TempFile } from './atomic-file.js';
import { interruption } from './exit-cleanup.js';

export interface Hashing {
  sha1?: boolean;
  sha512?: boolean;
  sha256?: boolean; // spec 0.8's File-Hash
}

export class OutputFile {
  private readonly sha1: Hash | undefined;
  private readonly sha512: Hash | undefined;
  private readonly sha256: Hash | undefined;
  /** Bytes [0, hashedTo) have been fed to the running hashes. */
  private hashedTo = 0;

  private constructor(
    readonly target: string,
    private readonly temp: TempFile,
    readonly length: number,
    readonly blockSize: number,
    hashing: Hashing,
  ) {
    this.sha1 = hashing.sha1 ? createHash('sha1') : undefined;
    this.sha512 = hashing.sha512 ? createHash('sha512') : undefined;
    this.sha256 = hashing.sha256 ? createHash('sha256') : undefined;
  }

  static async create(target: string, length: number, blockSize: number, hashing: Hashing = { sha1: true }): Promise<OutputFile> {
    await removeStaleTemps(target);
    const temp = await createTempFile(target);
    try {
      await temp.handle.truncate(length);
    } catch (error) {
      await temp.discard();
      throw fromSystemError(error, 'cannot size the output file', temp.path);
    }
    return new OutputFile(target, temp, length, blockSize, hashing);
  }

  get path(): string {
    return this.temp.path;
  }

  /** Write block `id` from buf[pos, ...); the last block is cut at the file's end. */
  writeBlock(id: number, buf: Uint8Array, pos: number): void {
    this.stopIfInterrupted();
    const offset = id * this.blockSize;
    const n = Math.min(this.blockSize, this.length - offset);
    try {
      writeSync(this.temp.handle.fd, buf, pos, n, offset);
    } catch (error) {
      throw fromSystemError(error, `cannot write the new version of ${this.target}`, this.temp.path);
    }
    this.feed(offset, buf.subarray(pos, pos + n));
  }

  // After SIGTERM the temporary is already gone (exit-cleanup): writing on would only waste time.
  private stopIfInterrupted(): void {
    const signal = interruption();
    if (signal) throw new ZpumpError('E_IO', `interrupted by ${signal}: ${this.target} was left unchanged`);
  }

  private feed(offset: number, data: Uint8Array): void {
    if (offset !== this.hashedTo) return;
    this.sha1?.update(data);
    this.sha512?.update(data);
    this.sha256?.update(data);
    this.hashedTo += data.length;
  }

  /**
   * Bytes another thread wrote at `offset` (exactly these, already in the file): hashed as if
   * written here, so the running hashes keep up with writes made elsewhere.
   */
  absorb(offset: number, data: Uint8Array): void {
    this.feed(offset, data);
  }

  /** Write bytes at an offset (a whole-file download). */
  writeAt(offset: number, data: Uint8Array): void {
    this.stopIfInterrupted();
    try {
      writeSync(this.temp.handle.fd, data, 0, data.length, offset);
    } catch (error) {
      throw fromSystemError(error, `cannot write the new version of ${this.target}`, this.temp.path);
    }
    this.feed(offset, data);
  }

  /** Hash what was written, every requested algorithm in one read of the file. */
  async digests(wanted: Hashing): Promise<{ sha1?: string; sha512Base64?: string; sha256?: string }> {
    // Running hashes continue from where file-order writing stopped; any other starts at 0.
    const resume = (!wanted.sha1 || this.sha1) && (!wanted.sha512 || this.sha512) && (!wanted.sha256 || this.sha256);
    const sha1 = wanted.sha1 ? (resume ? this.sha1! : createHash('sha1')) : undefined;
    const sha512 = wanted.sha512 ? (resume ? this.sha512! : createHash('sha512')) : undefined;
    const sha256 = wanted.sha256 ? (resume ? this.sha256! : createHash('sha256')) : undefined;
    if (!sha1 && !sha512 && !sha256) return {};
    const buf = new Uint8Array(4 << 20);
    for (let offset = resume ? this.hashedTo : 0; offset < this.length; ) {
      const { bytesRead } = await this.temp.handle.read(buf, 0, Math.min(buf.length, this.length - offset), offset);
      if (bytesRead === 0) break;
      sha1?.update(buf.subarray(0, bytesRead));
      sha512?.update(buf.subarray(0, bytesRead));
      sha256?.update(buf.subarray(0, bytesRead));
      offset += bytesRead;
    }
    return { ...(sha1 ? { sha1: sha1.digest('hex') } : {}), ...(sha512 ? { sha512Base64: sha512.digest('base64') } : {}), ...(sha256 ? { sha256: sha256.digest('hex') } : {}) };
  }

  /** Verify, then rename over the target. */
  async commit(expected: { sha1?: string; sha512Base64?: string; sha256?: string }, mtime?: number): Promise<void> {
    const got = await this.digests({ sha1: expected.sha1 !== undefined, sha512: expected.sha512Base64 !== undefined, sha256: expected.sha256 !== undefined });
    if (expected.sha256 !== undefined && got.sha256 !== expected.sha256) {
      throw new ZpumpError('E_VERIFY', `the rebuilt ${this.target} has SHA-256 ${got.sha256}, the control file's File-Hash says ${expected.sha256}: the data on the server does not match its signature (republished since?); the target was left unchanged`, { data: { expected: expected.sha256, actual: got.sha256 } });
    }
    if (expected.sha1 !== undefined) {
      if (got.sha1 !== expected.sha1) {
        throw new ZpumpError('E_VERIFY', `the rebuilt ${this.target} has SHA-1 ${got.sha1}, the control file says ${expected.sha1}: the data on the server does not match its signature (republished since?); the target was left unchanged`, { data: { expected: expected.sha1, actual: got.sha1 } });
      }
    }
    if (expected.sha512Base64 !== undefined) {
      if (got.sha512Base64 !== expected.sha512Base64) {
        throw new ZpumpError('E_VERIFY', `the downloaded ${this.target} does not match the announced sha512 identity; the target was left unchanged`, { data: { expected: expected.sha512Base64, actual: got.sha512Base64 } });
      }
    }
    // No fsync before the rename, as zsync and rsync: it cost 0.7 s per 512 MiB here, and ext4
    // (auto_da_alloc) and btrfs order a rename over an existing file after its data anyway.
    if (mtime !== undefined) await utimes(this.temp.path, mtime, mtime).catch(() => undefined);
    await this.temp.commit();
  }

  async discard(): Promise<void> {
    await this.temp.discard();
  }
}
