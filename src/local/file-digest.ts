// Whole-file hashes in one read: the zsync client's output (SHA-1 and the announced sha512), a
// file to announce (its sha512 identity).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fromSystemError } from '../errors.js';

export interface FileDigests {
  sha1?: string; // hex, as in .zsync files
  sha512?: string; // base64, as in v03 identities
  sha256?: string; // hex, as in spec 0.8's File-Hash
  md5?: string; // base64: the other v03 identity method
}

/** Test hook: files read whole by digestFile. */
export const digestCounter = { files: 0 };

export async function digestFile(path: string, wanted: { sha1?: boolean; sha512?: boolean; md5?: boolean; sha256?: boolean }): Promise<FileDigests> {
  const sha1 = wanted.sha1 ? createHash('sha1') : undefined;
  const sha512 = wanted.sha512 ? createHash('sha512') : undefined;
  const sha256 = wanted.sha256 ? createHash('sha256') : undefined;
  const md5 = wanted.md5 ? createHash('md5') : undefined;
  digestCounter.files++;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      sha1?.update(chunk as Buffer);
      sha512?.update(chunk as Buffer);
      sha256?.update(chunk as Buffer);
      md5?.update(chunk as Buffer);
    }
  } catch (error) {
    throw fromSystemError(error, 'cannot read', path);
  }
  return { ...(sha1 ? { sha1: sha1.digest('hex') } : {}), ...(sha512 ? { sha512: sha512.digest('base64') } : {}), ...(sha256 ? { sha256: sha256.digest('hex') } : {}), ...(md5 ? { md5: md5.digest('base64') } : {}) };
}
