// Test data made in the tests: seeded, so every run and both engines see the same bytes.

/** The zsync-format.md §9 generators. */
export function mod251(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

export function lcg(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = BigInt(seed);
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245n + 12345n) % 2147483648n;
    out[i] = Number((x >> 16n) & 0xffn);
  }
  return out;
}

/** Fast seeded pseudo-random bytes (xorshift32), for MiB-sized data. */
export function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** `data` with `edits` 4 KiB pieces rewritten, spread evenly (the benchmarks' "scattered rewrites"). */
export function scatteredEdits(data: Uint8Array, edits: number, seed: number): Uint8Array {
  const out = new Uint8Array(data);
  const noise = seededBytes(4096, seed);
  for (let i = 0; i < edits; i++) out.set(noise, Math.floor(((i + 0.37) / edits) * (data.length - 4096)));
  return out;
}

/** `data` with `fraction` of it rewritten in scattered 4 KiB pieces (at least one). */
export function scattered(data: Uint8Array, fraction: number, seed: number): Uint8Array {
  return scatteredEdits(data, Math.max(1, Math.round((data.length * fraction) / 4096)), seed);
}

export const concat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length)));
