// The strong (per-block) hashes a control file may name, and their digest lengths: plain data
// the parser needs, kept here so the format stays below the engine that computes them
// (engine/strong-hash.ts re-exports these beside the hashers).

export const STRONG_HASHES = ['MD4', 'MD5', 'SHA-224'] as const;
export type StrongHashName = (typeof STRONG_HASHES)[number];

/** Digest length in bytes: the most a record may keep, and spec 0.8's default strong length. */
export const DIGEST_BYTES: Record<StrongHashName, number> = { MD4: 16, MD5: 16, 'SHA-224': 28 };

/** "md5", "SHA224", "sha-224" → the spec's spelling; undefined when it is none of the three. */
export function strongHashNamed(text: string): StrongHashName | undefined {
  const key = text.trim().toUpperCase().replace(/^SHA-?224$/, 'SHA-224');
  return (STRONG_HASHES as readonly string[]).includes(key) ? (key as StrongHashName) : undefined;
}
