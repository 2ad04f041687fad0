// Worker threads load compiled JavaScript. From dist/ the worker sits beside this module; when
// the sources run under vitest (TypeScript, no build) we point at the built copy in dist/, which
// `npm test` builds first (pretest).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function workerUrl(name: string): URL | undefined {
  const here = new URL(`./${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL(`../../dist/local/${name}.js`, import.meta.url);
  return existsSync(fileURLToPath(built)) ? built : undefined;
}
