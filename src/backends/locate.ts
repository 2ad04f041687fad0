// Finds the zsync C tools on PATH and reads their versions. Results are cached per process:
// `zpump engines`, `make` and `sync` all ask.

import { ZpumpError } from '../errors.js';

export interface ToolInfo {
  name: 'zsyncmake' | 'zsync';
  path?: string;
  version?: string; // "0.6.2"
  problem?: string; // why it cannot be used
}

export const COMPATIBLE_VERSION = '0.6.2';
const cache = new Map<string, Promise<ToolInfo>>();

export function locateTool(name: ToolInfo['name']): Promise<ToolInfo> {
  let found = cache.get(name);
  if (!found) {
    found = probe(name);
    cache.set(name, found);
  }
  return found;
}

async function probe(name: ToolInfo['name']): Promise<ToolInfo> {
  const { default: which } = await import('which');
  const path = await which(name, { nothrow: true });
  if (!path) return { name, problem: `${name} is not on PATH (Debian/Ubuntu: apt-get install zsync)` };
  const { execa } = await import('execa');
  const run = await execa(path, ['-V'], { reject: false, timeout: 10_000, stdin: 'ignore' });
  // Both tools print "zsync v0.6.2" first, then a copyright notice.
  const m = /zsync v?(\d+\.\d+(?:\.\d+)?)/.exec(`${run.stdout}\n${run.stderr}`);
  if (!m) return { name, path, problem: `${path} -V did not print a zsync version (exit ${run.exitCode})` };
  const version = m[1]!;
  const info: ToolInfo = { name, path, version };
  if (version !== COMPATIBLE_VERSION) info.problem = `${name} ${version} is not ${COMPATIBLE_VERSION}: its .zsync output differs (Hash-Lengths rule), so auto uses the js engine`;
  return info;
}

export async function requireTool(name: ToolInfo['name']): Promise<ToolInfo & { path: string }> {
  const info = await locateTool(name);
  if (!info.path || !info.version) {
    throw new ZpumpError('E_BACKEND', `the zsync engine is not available: ${info.problem}; use --engine js`, { data: { tool: name } });
  }
  return info as ToolInfo & { path: string };
}
