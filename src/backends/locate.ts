// Finds the zsync tools on PATH, reads their versions and knows which control files each
// generation reads (vendor-notes/zsync-versions.md). Results are cached per process: `zpump
// engines`, `make` and `sync` all ask.

import { ZpumpError } from '../errors.js';
import { strongHashOf, type ControlFile } from '../format/control-file.js';

/** 0.6.2 (Debian's), 0.6.3–0.6.x (C, upstream's 2025 releases), 0.7+ (the Go rewrite). */
export type ZsyncGeneration = '0.6.2' | '0.6.3+' | '0.7+';

export interface ToolInfo {
  name: 'zsyncmake' | 'zsync';
  path?: string;
  version?: string; // "0.6.2"
  generation?: ZsyncGeneration;
  /** Which control files this tool reads (the client) or writes (zsyncmake), in words. */
  handles?: string;
  problem?: string; // why auto does not use it
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
  // 0.6.x's tools both print "zsync v0.6.2" first, then a copyright notice; the Go 0.7+ tools
  // print "zsync v0.7.1" and "zsyncmake v0.7.2".
  const m = /zsync(?:make)? v?(\d+\.\d+(?:\.\d+)?)/.exec(`${run.stdout}\n${run.stderr}`);
  if (!m) return { name, path, problem: `${path} -V did not print a zsync version (exit ${run.exitCode})` };
  const version = m[1]!;
  const generation = generationOf(version);
  const info: ToolInfo = { name, path, version };
  if (!generation) {
    info.problem = `${name} ${version} is older than 0.6.2: auto uses the js engine`;
    return info;
  }
  info.generation = generation;
  info.handles = name === 'zsync' ? CLIENT_READS[generation] : MAKER_WRITES[generation];
  // Only 0.6.2's zsyncmake writes 0.6.2's bytes (later ones changed the Hash-Lengths rule, and
  // 0.7+ writes spec 0.8 files); any client from 0.6.2 on reads what zpump makes.
  if (name === 'zsyncmake' && version !== COMPATIBLE_VERSION) info.problem = `zsyncmake ${version} is not ${COMPATIBLE_VERSION}: its .zsync output differs (Hash-Lengths rule${generation === '0.7+' ? ', format spec 0.8' : ''}), so auto uses the js engine`;
  return info;
}

const CLIENT_READS: Record<ZsyncGeneration, string> = {
  '0.6.2': 'reads MD4 control files (0.6.2 format, and spec 0.8 files with Strong-Hash-Algorithm MD4 and Safe:), gzip-inside too; http:// only',
  '0.6.3+': 'reads MD4 control files (0.6.2 format, and spec 0.8 files with Strong-Hash-Algorithm MD4 and Safe:), gzip-inside too; http:// only',
  '0.7+': 'reads spec 0.8 control files (MD4, MD5, SHA-224, File-Hash SHA-1/SHA-256) and 0.6.2 ones, not gzip-inside',
};
const MAKER_WRITES: Record<ZsyncGeneration, string> = {
  '0.6.2': "writes zsync 0.6.2's format (what zpump make writes by default)",
  '0.6.3+': 'writes 0.6.2-style files with a different Hash-Lengths rule',
  '0.7+': 'writes spec 0.8 files (-s MD4|MD5|SHA-224; MD4 ones carry Safe: for 0.6.x clients)',
};

export function generationOf(version: string): ZsyncGeneration | undefined {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  const n = major * 1e6 + minor * 1e3 + patch;
  if (n < 6002) return undefined;
  if (n === 6002) return '0.6.2';
  return n < 7000 ? '0.6.3+' : '0.7+';
}

/** Why this zsync client cannot sync from this control file, or undefined when it can. */
export function clientCannotRead(info: ToolInfo, cf: ControlFile): string | undefined {
  const g = info.generation;
  if (!g) return undefined;
  const v = `zsync ${info.version}`;
  const hash = strongHashOf(cf);
  if (g !== '0.7+' && hash !== 'MD4') return `${v} reads MD4 control files only, and this one's blocks are ${hash} (zsync 0.7+ or the js engine read it)`;
  if (g === '0.7+' && cf.gzip) return `${v} dropped gzip-inside control files (Z-Map2); zsync 0.6.x reads them`;
  return undefined;
}

export async function requireTool(name: ToolInfo['name']): Promise<ToolInfo & { path: string }> {
  const info = await locateTool(name);
  if (!info.path || !info.version) {
    throw new ZpumpError('E_BACKEND', `the zsync engine is not available: ${info.problem}; use --engine js`, { data: { tool: name } });
  }
  return info as ToolInfo & { path: string };
}
