// MD4 for block checksums. Node's OpenSSL 3 has no MD4, so this wraps hash-wasm's WASM MD4
// (≈1.1 GB/s on large blocks here). One hasher is reused with init() per block: creating one
// costs far more than hashing a block.

import { createRequire } from 'node:module';
import type { IHasher } from 'hash-wasm';
import type { StrongHasher } from './strong-hash.js';

// Any strong hash has this shape (strong-hash.ts); the engine's MD4 path is just the default one.
export type Md4 = StrongHasher;

// hash-wasm's main bundle embeds every algorithm's WASM and costs about 10 MB of memory per
// thread to load; its MD4-only bundle has the same createMD4.
const { createMD4 } = createRequire(import.meta.url)('hash-wasm/dist/md4.umd.min.js') as { createMD4(): Promise<IHasher> };

export function createMd4(): Promise<IHasher> {
  return createMD4();
}

let zeros = new Uint8Array(0);

/** The strong hash (MD4 unless the hasher is another) of data[start, end) zero-padded to blockSize bytes. */
export function md4Padded(md4: Md4, data: Uint8Array, start: number, end: number, blockSize: number): Uint8Array {
  md4.init();
  md4.update(data.subarray(start, end));
  const pad = blockSize - (end - start);
  if (pad > 0) {
    if (zeros.length < pad) zeros = new Uint8Array(pad);
    md4.update(zeros.subarray(0, pad));
  }
  return md4.digest('binary');
}
