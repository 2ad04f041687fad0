// The library face: make() with plain options → a result object. The CLI is a thin layer over
// this; scripts can import it too. Defaults and thresholds live here, not in the backends.

import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { withEngine } from './backends/select.js';
import type { EngineChoice, MakeResult } from './backends/types.js';
import { ZpumpError, fromSystemError } from './errors.js';
import { autoBlockSize, isPowerOfTwo } from './format/hash-lengths.js';

export const DEFAULT_THRESHOLD = 1 << 20;
export const DEFAULT_BUDGET = 64 << 10;
export const MIN_BLOCK_SIZE = 1024;

export interface MakeOptions {
  input: string;
  /** Default: INPUT.zsync */
  output?: string;
  /** A power of two >= 1024, or 'auto' (default): the smallest >= 4 KiB that fits `budget`. */
  blockSize?: number | 'auto';
  budget?: number;
  /** Files smaller than this get no signature (default 1 MiB). */
  threshold?: number;
  force?: boolean;
  /** URL header lines; default: the input's file name, relative. */
  urls?: string[];
  engine?: EngineChoice;
  onProgress?: (bytesRead: number, total: number) => void;
}

export type MakeOutcome =
  | (MakeResult & { input: string; skipped: false; seconds: number })
  | { input: string; skipped: true; reason: 'below-threshold'; length: number; threshold: number; seconds: number };

export async function make(options: MakeOptions): Promise<MakeOutcome> {
  const started = performance.now();
  const seconds = (): number => Math.round(performance.now() - started) / 1000;
  const input = options.input;
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  let length: number;
  try {
    const st = await stat(input);
    if (!st.isFile()) throw new ZpumpError('E_BAD_INPUT', `${input} is not a regular file`, { data: { path: input } });
    length = st.size;
  } catch (error) {
    throw fromSystemError(error, 'cannot make a signature', input);
  }
  if (length < threshold && !options.force) {
    return { input, skipped: true, reason: 'below-threshold', length, threshold, seconds: seconds() };
  }
  const blockSize = resolveBlockSize(options.blockSize ?? 'auto', length, options.budget ?? DEFAULT_BUDGET);
  const request = {
    input,
    output: options.output ?? `${input}.zsync`,
    blockSize,
    urls: options.urls ?? [basename(input)],
    filename: basename(input),
    onProgress: options.onProgress,
  };
  const result = await withEngine(options.engine ?? 'auto', 'zsyncmake', (backend) => backend.make(request));
  return { ...result, input, skipped: false, seconds: seconds() };
}

export function resolveBlockSize(choice: number | 'auto', length: number, budget: number): number {
  if (choice === 'auto') return autoBlockSize(length, budget);
  if (!isPowerOfTwo(choice) || choice < MIN_BLOCK_SIZE) {
    throw new ZpumpError('E_USAGE', `block size must be a power of two of at least ${MIN_BLOCK_SIZE} bytes (e.g. 64k, 1M), got ${choice}`);
  }
  return choice;
}
