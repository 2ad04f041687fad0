// The js engine and zsyncmake 0.6.2 must write the same .zsync bytes for the same file, block
// size, URL and mtime; and our parser must read back every file zsyncmake wrote.

import { execa } from 'execa';
import { open, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { make } from '../../src/api.js';
import { parseControlFile, renderControlFile } from '../../src/format/control-file.js';
import { seededBytes } from '../helpers/data.js';
import { requireTool } from '../helpers/require-tool.js';

const MTIME = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
const BLOCK_SIZES = [2048, 4096, 65536, 1 << 20, 4 << 20];

describe.skipIf(!requireTool('zsyncmake', 'zsync'))('make: js engine vs zsyncmake', () => {
  let tmp: DirectoryResult;
  beforeAll(async () => { tmp = await dir({ unsafeCleanup: true }); });
  afterAll(async () => { await tmp.cleanup(); });

  async function compare(name: string, blockSize: number): Promise<Buffer> {
    const input = join(tmp.path, name);
    await utimes(input, MTIME, MTIME);
    const cOut = join(tmp.path, `${name}.${blockSize}.c.zsync`);
    const jsOut = join(tmp.path, `${name}.${blockSize}.js.zsync`);
    await execa('zsyncmake', ['-b', String(blockSize), '-u', name, '-o', cOut, name], { cwd: tmp.path });
    const result = await make({ input, output: jsOut, blockSize, urls: [name], engine: 'js', force: true });
    expect(result.skipped).toBe(false);
    const [c, js] = await Promise.all([readFile(cOut), readFile(jsOut)]);
    expect(js.equals(c), `${name} at ${blockSize}: js .zsync differs from zsyncmake's`).toBe(true);
    // The parser reads back what zsyncmake wrote, and renders it to the same bytes.
    expect(Buffer.from(renderControlFile(parseControlFile(c))).equals(c)).toBe(true);
    return c;
  }

  for (const blockSize of BLOCK_SIZES) {
    const sizes: Array<[string, number]> = [
      ['empty', 0], ['one', 1], ['bs-1', blockSize - 1], ['bs', blockSize], ['bs+1', blockSize + 1], ['several', 5 * blockSize + 17],
    ];
    it.each(sizes)(`block ${blockSize}: %s (%i bytes)`, async (label, size) => {
      const name = `f-${label}-${blockSize}.bin`;
      await writeFile(join(tmp.path, name), seededBytes(size, size + blockSize));
      await compare(name, blockSize);
    });

    it(`block ${blockSize}: 3 MiB random`, async () => {
      await writeFile(join(tmp.path, 'random3m.bin'), seededBytes(3 << 20, 42));
      await compare('random3m.bin', blockSize);
    });

    it(`block ${blockSize}: 8 MiB sparse file with long zero runs`, async () => {
      const name = 'sparse8m.bin';
      const fh = await open(join(tmp.path, name), 'w');
      await fh.truncate(8 << 20);
      for (const at of [0, 100_000, 3 << 20, (8 << 20) - 5000]) await fh.write(seededBytes(3000, at), 0, 3000, at);
      await fh.close();
      await compare(name, blockSize);
    });
  }

  it('40 MiB random at 64 KiB and 2 KiB blocks (hashed by worker threads)', async () => {
    await writeFile(join(tmp.path, 'random40m.bin'), seededBytes(40 << 20, 7));
    await compare('random40m.bin', 65536);
    await compare('random40m.bin', 2048);
  });

  it('a sparse file over 4 GiB (64-bit offsets)', async () => {
    const name = 'huge.bin';
    const size = 2 ** 32 + 12345;
    const fh = await open(join(tmp.path, name), 'w');
    await fh.truncate(size);
    for (const at of [0, 2 ** 32 - 3000, size - 2000]) await fh.write(seededBytes(2000, at), 0, 2000, at);
    await fh.close();
    const c = await compare(name, 4 << 20);
    expect(parseControlFile(c).length).toBe(size);
  }, 180_000);
});
