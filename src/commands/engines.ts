// zpump engines: which engines exist here, with paths and versions, and what auto will pick.

import { createRequire } from 'node:module';
import { locateTool, type ToolInfo } from '../backends/locate.js';
import { printJson, say } from './output.js';

export async function runEngines(flags: { json: boolean }): Promise<number> {
  const tools = await Promise.all([locateTool('zsyncmake'), locateTool('zsync')]);
  const require = createRequire(import.meta.url);
  const hashWasm = (require('hash-wasm/package.json') as { version: string }).version;
  const js = { name: 'js', available: true, version: `zpump ${zpumpVersion()}`, node: process.version, md4: `hash-wasm ${hashWasm}` };
  const usable = (t: ToolInfo): boolean => Boolean(t.path && t.version && !t.problem);
  const auto = {
    make: usable(tools[0]) ? 'zsync' : 'js',
    sync: usable(tools[1]) ? 'zsync for http:// data, js for https, sftp, file: URLs and paths' : 'js',
  };
  if (flags.json) {
    printJson({ engines: [js, ...tools.map((t) => ({ name: t.name, available: usable(t), path: t.path ?? null, version: t.version ?? null, problem: t.problem ?? null }))], auto });
    return 0;
  }
  say(`js         zpump ${zpumpVersion()} on node ${process.version} (MD4: hash-wasm ${hashWasm})`);
  for (const t of tools) say(`${t.name.padEnd(10)} ${t.path ? `${t.path} v${t.version ?? '?'}` : 'not installed'}${t.problem ? `  (${t.problem})` : ''}`);
  say(`auto       make: ${auto.make}; sync: ${auto.sync}`);
  return 0;
}

export function zpumpVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}
