// --engine auto: the C tools where they are installed and able to do the job (a zsync 0.6.x
// client cannot read MD5 or SHA-224 control files, 0.7+ cannot read gzip-inside ones), the js engine
// otherwise, and the js engine again when the C tools fail. The result says which one ran.

import { isZpumpError } from '../errors.js';
import { createJsBackend } from './js.js';
import { locateTool, type ToolInfo } from './locate.js';
import type { Backend, EngineChoice, Fallback } from './types.js';
import { createZsyncBackend } from './zsync.js';

/** Run `work` on the chosen engine; under auto, retry on js when the C tool fails. */
export async function withEngine<T extends { fallback?: Fallback }>(
  choice: EngineChoice,
  tool: 'zsyncmake' | 'zsync',
  work: (backend: Backend) => Promise<T>,
  toolCanDoIt: boolean | ((info: ToolInfo) => boolean) = true,
): Promise<T> {
  if (choice === 'js') return work(createJsBackend());
  if (choice === 'zsync') return work(createZsyncBackend());
  const info = await locateTool(tool);
  const able = typeof toolCanDoIt === 'function' ? toolCanDoIt(info) : toolCanDoIt;
  if (!info.path || info.problem || !able) return work(createJsBackend());
  try {
    return await work(createZsyncBackend());
  } catch (error) {
    // Bad input stays bad whichever engine reads it; only a failing tool is worth a retry.
    if (isZpumpError(error) && error.code !== 'E_BACKEND') throw error;
    const result = await work(createJsBackend());
    return { ...result, fallback: { from: 'zsync', reason: error instanceof Error ? error.message : String(error) } };
  }
}
