// zpump inspect CONTROL: what a .zsync says and whether each engine can use it. This is where an
// operator sees why a control file is refused (parse errors exit 2 with the reason).

import { readControlFile } from '../local/control-file-io.js';
import type { ControlFile } from '../format/control-file.js';
import { formatMTime } from '../format/mtime.js';
import { formatBytes, printJson, say } from './output.js';

export function describeControl(cf: ControlFile, fileBytes: number): Record<string, unknown> {
  const blocks = Math.ceil(cf.length / cf.blockSize);
  const problems: string[] = [];
  const zsyncProblems: string[] = [];
  if (cf.gzip) problems.push('gzip-inside (Z-Map2): only the zsync engine (C tools) can use it');
  if (cf.length === 0) zsyncProblems.push('Length 0: zsync 0.6.2 refuses it ("not a zsync file"); zpump creates the empty file');
  if (cf.urls.length === 0 && !cf.gzip) zsyncProblems.push('no URL header: zsync 0.6.2 exits 3 even when seeds complete the file; zpump needs --url');
  if (!cf.sha1) problems.push('no SHA-1 header: the result can only be checked block by block');
  return {
    zsync: cf.zsyncVersion,
    filename: cf.filename ?? null,
    mtime: cf.mtime === undefined ? null : new Date(cf.mtime * 1000).toISOString(),
    length: cf.length,
    blockSize: cf.blockSize,
    hashLengths: cf.hashLengths,
    blocks,
    urls: cf.urls,
    sha1: cf.sha1 ?? null,
    signatureBytes: fileBytes,
    recordBytes: cf.records.length,
    gzipInside: Boolean(cf.gzip),
    extraHeaders: Object.fromEntries(cf.extraHeaders),
    usable: { js: !cf.gzip, zsync: zsyncProblems.length === 0 },
    problems: [...problems, ...zsyncProblems],
  };
}

export async function runInspect(control: string, flags: { json: boolean }): Promise<number> {
  const { bytes, control: cf } = await readControlFile(control);
  const info = describeControl(cf, bytes.length);
  if (flags.json) {
    printJson({ path: control, ...info });
    return 0;
  }
  const h = cf.hashLengths;
  say(`${control}: zsync ${cf.zsyncVersion} control file, ${formatBytes(bytes.length)}`);
  if (cf.filename !== undefined) say(`  Filename      ${cf.filename}`);
  if (cf.mtime !== undefined) say(`  MTime         ${formatMTime(cf.mtime)}`);
  say(`  Length        ${cf.length} (${formatBytes(cf.length)})`);
  say(`  Blocksize     ${cf.blockSize} → ${info.blocks} blocks`);
  say(`  Hash-Lengths  ${h.seqMatches},${h.rsumBytes},${h.checksumBytes} (seq matches, weak bytes, MD4 bytes: ${h.rsumBytes + h.checksumBytes} bytes a block)`);
  for (const url of cf.urls) say(`  URL           ${url}${/^[a-z][a-z0-9+.-]*:/i.test(url) ? '' : '  (relative: resolved against the .zsync\'s own URL)'}`);
  say(`  SHA-1         ${cf.sha1 ?? '(none)'}`);
  for (const [k, v] of cf.extraHeaders) say(`  ${k.padEnd(13)} ${v}`);
  const usable = info.usable as { js: boolean; zsync: boolean };
  say(`  usable by     js engine: ${usable.js ? 'yes' : 'no'}; zsync 0.6.2: ${usable.zsync ? 'yes' : 'no'}`);
  for (const p of info.problems as string[]) say(`  note          ${p}`);
  return 0;
}
