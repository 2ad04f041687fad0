// zpump zsyncmake ARGS... : the js engine behind zsyncmake 0.6.2's own flags, so Makefiles and
// scripts written for zsyncmake run unchanged where it is not installed. Same output bytes;
// gzip-inside mode (-z, or a .gz input without -Z) is left to the real zsyncmake.

import { fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { makeControlBytes } from '../backends/js.js';
import { ZpumpError, fromSystemError } from '../errors.js';
import { isPowerOfTwo, MAX_BLOCK_SIZE, zsyncmakeDefaultBlockSize } from '../format/hash-lengths.js';
import { writeVerifiedControlFile } from '../local/control-file-io.js';
import { STRONG_HASHES, type StrongHashName } from '../engine/strong-hash.js';
import { warn } from './output.js';

export const ZSYNCMAKE_USAGE = `usage: zpump zsyncmake [-b blocksize] [-o outfile] [-f filename] [-u url]... [-U url]... [-s MD4|MD5|SHA-224] [-Z] [-C] [-e] [-v] [-V] [file]
The js engine with zsyncmake 0.6.2's flags and output. Reads stdin unless exactly one file is given.
-s (from upstream zsyncmake 0.7+) writes a format spec 0.8 file with that block hash, as upstream does;
without it the file is zsyncmake 0.6.2's, byte for byte. zsync 0.6.x reads MD4 files only.`;

export async function runZsyncmake(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: false,
    allowPositionals: true,
    options: {
      b: { type: 'string', short: 'b' },
      o: { type: 'string', short: 'o', multiple: true },
      f: { type: 'string', short: 'f', multiple: true },
      u: { type: 'string', short: 'u', multiple: true },
      U: { type: 'string', short: 'U', multiple: true },
      z: { type: 'boolean', short: 'z' },
      Z: { type: 'boolean', short: 'Z' },
      e: { type: 'boolean', short: 'e' },
      C: { type: 'boolean', short: 'C' },
      v: { type: 'boolean', short: 'v' },
      V: { type: 'boolean', short: 'V' },
      s: { type: 'string', short: 's' },
      h: { type: 'boolean', short: 'h' },
    },
  });
  if (values.h) { process.stdout.write(ZSYNCMAKE_USAGE + '\n'); return 0; }
  if (values.V) { process.stdout.write('zsync v0.6.2 (zpump js engine)\n'); return 0; }
  const once = (name: 'o' | 'f'): string | undefined => {
    const list = values[name] as string[] | undefined;
    if (list && list.length > 1) throw new ZpumpError('E_USAGE', `zsyncmake: -${name} given more than once`);
    return list?.[0];
  };
  const outFlag = once('o');
  const nameFlag = once('f');
  let spec08: { strongHash: StrongHashName } | undefined;
  if (values.s !== undefined) {
    // Upstream takes exactly these spellings; so do we, to fail where it fails.
    const strongHash = (STRONG_HASHES as readonly string[]).includes(String(values.s)) ? (values.s as StrongHashName) : undefined;
    if (!strongHash) throw new ZpumpError('E_USAGE', `usage: zsyncmake: unsupported strong checksum specified (${String(values.s)}): -s takes MD4, MD5 or SHA-224`);
    spec08 = { strongHash };
  }
  if (values.z) throw new ZpumpError('E_UNSUPPORTED', 'zsyncmake -z (compress, then gzip-inside) needs the real zsyncmake: zpump make --engine zsync, or install zsync');
  // getopt's atoi: leading digits, 0 or none means "use the default".
  const requested = parseInt(String(values.b ?? '0'), 10) || 0;
  if (requested !== 0 && !isPowerOfTwo(requested)) throw new ZpumpError('E_USAGE', `usage: zsyncmake: blocksize must be a power of 2 (512, 1024, 2048, ...), got ${values.b}`);
  // zsyncmake's atoi would wrap these; zpump's engines hold each block in memory whole.
  if (requested > MAX_BLOCK_SIZE) throw new ZpumpError('E_USAGE', `usage: zsyncmake: blocksize ${values.b} is larger than 64 MiB (${MAX_BLOCK_SIZE}), the largest block zpump makes`);

  const file = positionals.length === 1 ? positionals[0]! : undefined;
  let input = file;
  let cleanup: (() => Promise<void>) | undefined;
  let stdinLength = 0;
  if (file === undefined) {
    // Like zsyncmake, a pipe counts as length 0 for the default block size.
    try { const st = fstatSync(0); stdinLength = st.isFile() ? st.size : 0; } catch { /* no stdin */ }
    const spooled = await spoolStdin();
    input = spooled.path;
    cleanup = spooled.cleanup;
  } else if (!values.Z && (await startsWithGzipMagic(file))) {
    throw new ZpumpError('E_UNSUPPORTED', `${file} is gzip data: zsyncmake would describe its decompressed content (gzip-inside), which only the C tools do. Pass -Z to treat it as opaque bytes`);
  }
  try {
    const filename = nameFlag ?? (file === undefined ? undefined : basename(file));
    const urls = [...((values.u as string[] | undefined) ?? [])];
    if (urls.length === 0 && file !== undefined) {
      urls.push(file);
      warn(`no URL given (-u), so the .zsync carries the relative URL ${JSON.stringify(file)}: serve it from the same directory as the .zsync`);
    }
    urls.push(...((values.U as string[] | undefined) ?? []));
    const { bytes } = await makeControlBytes({
      input: input!,
      blockSize: (length) => requested || zsyncmakeDefaultBlockSize(file === undefined ? stdinLength : length),
      urls,
      filename,
      includeMtime: file !== undefined,
      ...(spec08 ? { spec08 } : {}),
    });
    const output = outFlag ?? (filename !== undefined ? `${filename}.zsync` : undefined);
    if (output === undefined) {
      await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (e) => (e ? reject(e) : resolve())));
    } else {
      await writeVerifiedControlFile(output, async (handle) => { await handle.writeFile(bytes); });
    }
    return 0;
  } finally {
    await cleanup?.();
  }
}

async function startsWithGzipMagic(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    throw fromSystemError(error, 'zsyncmake: cannot open', path);
  }
  try {
    const head = new Uint8Array(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function spoolStdin(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const { file } = await import('tmp-promise');
  const tmp = await file({ prefix: 'zpump-stdin-' });
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  await pipeline(process.stdin, createWriteStream(tmp.path));
  return { path: tmp.path, cleanup: tmp.cleanup };
}

