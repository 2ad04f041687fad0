// zpump engines: which engines exist here, with paths and versions, which control files each
// reads, and what auto will pick.

import { createRequire } from 'node:module';
import { locateTool, type ToolInfo } from '../backends/locate.js';
import { printJson, say } from './output.js';

export async function runEngines(flags: { json: boolean }): Promise<number> {
  const tools = await Promise.all([locateTool('zsyncmake'), locateTool('zsync')]);
  const require = createRequire(import.meta.url);
  const hashWasm = (require('hash-wasm/package.json') as { version: string }).version;
  const js = {
    name: 'js', available: true, version: `zpump ${zpumpVersion()}`, node: process.version, md4: `hash-wasm ${hashWasm}`,
    handles: 'reads zsync 0.6.2 and spec 0.8 control files (MD4, MD5, SHA-224; File-Hash SHA-1/SHA-256), not gzip-inside; writes 0.6.2 (default) or 0.8 (--format 0.8)',
  };
  const usable = (t: ToolInfo): boolean => Boolean(t.path && t.version && !t.problem);
  const client = tools[1];
  const auto = {
    make: usable(tools[0]) ? 'zsync for the default format, js for --format 0.8' : 'js',
    sync: !usable(client)
      ? 'js'
      : client.generation === '0.7+'
        ? 'zsync for http:// data, js for https, sftp, file: URLs, paths and gzip-inside files'
        : 'zsync for http:// data with MD4 control files (gzip-inside too), js for MD5/SHA-224 files, https, sftp, file: URLs and paths',
    // Measured (scripts/bench-delta.ts): zsync would read the whole fine .zsync; js reads only the records it needs.
    twoLevel: 'js (two-level messages: only the fine records and blocks needed; --engine zsync uses the coarse signature alone)',
  };
  if (flags.json) {
    printJson({ engines: [js, ...tools.map((t) => ({ name: t.name, available: usable(t), path: t.path ?? null, version: t.version ?? null, generation: t.generation ?? null, handles: t.handles ?? null, problem: t.problem ?? null }))], auto });
    return 0;
  }
  say(`js         zpump ${zpumpVersion()} on node ${process.version} (MD4: hash-wasm ${hashWasm})`);
  say(`             ${js.handles}`);
  for (const t of tools) {
    say(`${t.name.padEnd(10)} ${t.path ? `${t.path} v${t.version ?? '?'}${t.generation ? ` (${t.generation})` : ''}` : 'not installed'}${t.problem ? `  (${t.problem})` : ''}`);
    if (t.handles) say(`             ${t.handles}`);
  }
  say(`auto       make: ${auto.make}; sync: ${auto.sync}; ${auto.twoLevel}`);
  return 0;
}

export function zpumpVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}
