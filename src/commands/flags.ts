// Flag parsers shared by the subcommands. They throw ZpumpError('E_USAGE') naming the flag, so
// a typo exits 2 with a message that says what was expected.

import { ZpumpError } from '../errors.js';
import type { EngineChoice } from '../backends/types.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** "512k", "64K", "1M", "1MiB", "2G", "4096" → bytes (powers of 1024). */
export function parseSize(text: string, flag = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ZpumpError('E_USAGE', `${flag} expects a size such as 4096, 64k, 1M or 2G, got ${JSON.stringify(text)}`);
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new ZpumpError('E_USAGE', `${flag}: ${text} is too large`);
  return bytes;
}

export function parseBlockSize(text: string): number | 'auto' {
  return text === 'auto' ? 'auto' : parseSize(text, '--block-size');
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
