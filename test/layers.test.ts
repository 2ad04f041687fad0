// Imports point down the house: cli → commands → api → backends → local → transport → engine →
// format → errors. A module may import its own layer and the ones below, never above.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const ORDER = ['errors', 'format', 'engine', 'transport', 'local', 'backends', 'api', 'pump', 'commands', 'cli'];

function layerOf(file: string): number {
  const rel = relative(SRC, file);
  if (rel === 'transport/types.ts') return 0; // plain interfaces, shared by every layer
  const top = rel.split('/')[0]!.replace(/\.ts$/, '');
  const rank = ORDER.indexOf(top);
  if (rank < 0) throw new Error(`${rel} belongs to no layer: add it to ORDER`);
  return rank;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('layers', () => {
  it('every import points to the same layer or one below', () => {
    const violations: string[] = [];
    for (const file of sources(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
        if (layerOf(target) > layerOf(file)) violations.push(`${relative(SRC, file)} imports ${relative(SRC, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
