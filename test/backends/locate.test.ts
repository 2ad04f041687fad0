// Which zsync generation a -V version is, and which control files its client reads
// (vendor-notes/zsync-versions.md): the rules auto and `zpump engines` go by.

import { describe, expect, it } from 'vitest';
import { clientCannotRead, generationOf, locateTool, type ToolInfo } from '../../src/backends/locate.js';
import type { ControlFile } from '../../src/format/control-file.js';
import { requireTool } from '../helpers/require-tool.js';

const cf = (extra: Partial<ControlFile> = {}): ControlFile => ({
  zsyncVersion: '0.8.0', blockSize: 2048, length: 10, hashLengths: { seqMatches: 1, rsumBytes: 4, checksumBytes: 16 }, urls: ['x'], extraHeaders: [], records: new Uint8Array(20), ...extra,
});
const client = (version: string): ToolInfo => ({ name: 'zsync', path: '/usr/bin/zsync', version, generation: generationOf(version) });
const gzip = { zUrls: ['x.gz'], zMapEntries: 1 };

describe('zsync generations', () => {
  it.each([
    ['0.6.1', undefined], ['0.6.2', '0.6.2'], ['0.6.3', '0.6.3+'], ['0.6.4', '0.6.3+'], ['0.6.10', '0.6.3+'], ['0.7.0', '0.7+'], ['0.7.2', '0.7+'], ['0.8', '0.7+'], ['1.0.0', '0.7+'],
  ])('%s → %s', (version, generation) => {
    expect(generationOf(version)).toBe(generation);
  });

  it('0.6.x clients read MD4 files (0.6.2 format or spec 0.8), gzip-inside too, not MD5 or SHA-224', () => {
    for (const v of ['0.6.2', '0.6.4']) {
      expect(clientCannotRead(client(v), cf())).toBeUndefined();
      expect(clientCannotRead(client(v), cf({ strongHash: 'MD4' }))).toBeUndefined();
      expect(clientCannotRead(client(v), cf({ gzip }))).toBeUndefined();
      expect(clientCannotRead(client(v), cf({ strongHash: 'MD5' }))).toMatch(`zsync ${v} reads MD4 control files only, and this one's blocks are MD5`);
      expect(clientCannotRead(client(v), cf({ strongHash: 'SHA-224' }))).toMatch(/blocks are SHA-224/);
    }
  });

  it('0.7+ clients read every spec 0.8 file, and no gzip-inside one', () => {
    for (const strongHash of ['MD4', 'MD5', 'SHA-224'] as const) expect(clientCannotRead(client('0.7.1'), cf({ strongHash }))).toBeUndefined();
    expect(clientCannotRead(client('0.7.1'), cf({ gzip }))).toMatch(/dropped gzip-inside control files/);
  });

  it.skipIf(!requireTool('zsync', 'zsync'))('reads the installed tools\' versions from -V', async () => {
    for (const name of ['zsync', 'zsyncmake'] as const) {
      const info = await locateTool(name);
      expect(info.version).toMatch(/^\d+\.\d+/);
      expect(info.generation).toBe(generationOf(info.version!));
      expect(info.handles).toBeTruthy();
    }
  });
});
