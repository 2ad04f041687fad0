// The strong (per-block) checksum of a .zsync: MD4 in zsync 0.6.2's files, MD4, MD5 or SHA-224
// in spec 0.8's (Strong-Hash-Algorithm). One hasher object is made per scan and reused for every
// candidate block (init, update, digest), so the matcher's hot path has one shape whatever the
// algorithm: MD4 through hash-wasm (node's OpenSSL 3 has no MD4), MD5 and SHA-224 through node's
// crypto, whose Hash objects cannot be reset, so the wrapper starts a new one on init().

import { createHash, type Hash } from 'node:crypto';
import type { StrongHashName } from '../format/strong-hash-names.js';
import { createMd4 } from './md4.js';

export { DIGEST_BYTES, STRONG_HASHES, strongHashNamed, type StrongHashName } from '../format/strong-hash-names.js';

/** The subset of hash-wasm's IHasher the engine uses; any strong hash provides it. */
export interface StrongHasher {
  init(): unknown;
  update(data: Uint8Array): unknown;
  digest(format: 'binary'): Uint8Array;
}

class NodeHasher implements StrongHasher {
  private hash: Hash;

  constructor(private readonly algorithm: string) {
    this.hash = createHash(algorithm);
  }

  init(): this {
    this.hash = createHash(this.algorithm);
    return this;
  }

  update(data: Uint8Array): this {
    this.hash.update(data);
    return this;
  }

  digest(): Uint8Array {
    return this.hash.digest();
  }
}

export async function createStrongHasher(name: StrongHashName = 'MD4'): Promise<StrongHasher> {
  if (name === 'MD4') return createMd4();
  return new NodeHasher(name === 'MD5' ? 'md5' : 'sha224');
}

/** The strong hash of data[start, end) zero-padded to blockSize bytes (the short last block). */
export { md4Padded as strongPadded } from './md4.js';
