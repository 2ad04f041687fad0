// Flag parsers shared by the subcommands. They throw ZpumpError('E_USAGE') naming the flag, so
// a typo exits 2 with a message that says what was expected.

import { ZpumpError } from '../errors.js';
import type { EngineChoice } from '../backends/types.js';
import { isPowerOfTwo, MAX_BLOCK_SIZE } from '../format/hash-lengths.js';
import { strongHashNamed, type StrongHashName } from '../engine/strong-hash.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** "512k", "64K", "1M", "1MiB", "2G", "4096" → bytes (powers of 1024). */
export function parseSize(text: string, flag = 'size', max = Number.MAX_SAFE_INTEGER): number {
  const m = /^\s*(\d{1,16}(?:\.\d{1,6})?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ZpumpError('E_USAGE', `usage: ${flag} expects a size such as 4096, 64k, 1M or 2G, got ${JSON.stringify(text)}`);
  }
  const exact = Number(m[1]) * unit;
  // "0.3" or "1.0000001k" name no whole number of bytes: a typo, not a size.
  if (!Number.isInteger(exact)) throw new ZpumpError('E_USAGE', `usage: ${flag}: ${text} is not a whole number of bytes`);
  if (!Number.isSafeInteger(exact) || exact > max) throw new ZpumpError('E_USAGE', `usage: ${flag}: ${text} is too large (at most ${max} bytes)`);
  return exact;
}

export const BLOCK_SIZE_HELP = 'at most 64M: each block is held in memory whole, and from 64k up the weak sum stops seeing the byte leaving the window, so larger blocks match slower and worse';

export function parseBlockSize(text: string): number | 'auto' {
  if (text === 'auto') return 'auto';
  const size = parseSize(text, '--block-size');
  if (size > MAX_BLOCK_SIZE) throw new ZpumpError('E_USAGE', `usage: --block-size ${text} is larger than 64M (${MAX_BLOCK_SIZE} bytes), the largest block zpump makes: ${BLOCK_SIZE_HELP}`);
  if (!isPowerOfTwo(size) || size < 1024) throw new ZpumpError('E_USAGE', `usage: --block-size must be a power of two from 1k to 64M (e.g. 64k, 1M), got ${JSON.stringify(text)}`);
  return size;
}

export function parseFormat(text: string): '0.6.2' | '0.8' {
  if (text === '0.6.2' || text === '0.8') return text;
  throw new ZpumpError('E_USAGE', `usage: --format expects 0.6.2 (zsyncmake 0.6.2's, the default) or 0.8 (format spec 0.8), got ${JSON.stringify(text)}`);
}

export function parseStrongHash(text: string): StrongHashName {
  const name = strongHashNamed(text);
  if (!name) throw new ZpumpError('E_USAGE', `usage: --strong-hash expects md4, md5 or sha224, got ${JSON.stringify(text)}`);
  return name;
}

export function parseEngine(text: string): EngineChoice {
  if (text === 'auto' || text === 'zsync' || text === 'js') return text;
  throw new ZpumpError('E_USAGE', `--engine expects auto, zsync or js, got ${JSON.stringify(text)}`);
}

export function parseCount(text: string, flag: string, min = 0): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min) throw new ZpumpError('E_USAGE', `${flag} expects a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

export function parseSeconds(text: string, flag: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new ZpumpError('E_USAGE', `${flag} expects seconds (e.g. 0.5 or 2), got ${JSON.stringify(text)}`);
  return n;
}

export function parseMillis(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(text);
  if (!m) throw new ZpumpError('E_USAGE', `${flag} expects milliseconds (e.g. 500, 500ms or 2s), got ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}
