// zpump inspect CONTROL: what a .zsync says and whether each engine can use it. This is where an
// operator sees why a control file is refused (parse errors exit 2 with the reason).

import { readFile } from 'node:fs/promises';
import { fromSystemError } from '../errors.js';
import { dataUrlOf, fineSignatureOf, parseAnnouncement, type Announcement } from '../format/announcement.js';
import { parseControlFile, strongHashOf, wholeFileChecks, type ControlFile } from '../format/control-file.js';
import { readControlFile } from '../local/control-file-io.js';
import { readStdin } from '../local/stdin.js';
import { DEFAULT_SCHEMES, checkMessage } from '../pump/message.js';
import { formatMTime } from '../format/mtime.js';
import { formatBytes, printJson, say } from './output.js';

export function describeControl(cf: ControlFile, fileBytes: number): Record<string, unknown> {
  const blocks = Math.ceil(cf.length / cf.blockSize);
  const problems: string[] = [];
  const zsyncProblems: string[] = [];
  if (cf.gzip) problems.push('gzip-inside (Z-Map2): only the zsync engine (C tools) can use it');
  if (cf.length === 0) zsyncProblems.push('Length 0: zsync 0.6.2 refuses it ("not a zsync file"); zpump creates the empty file');
  if (cf.urls.length === 0 && !cf.gzip) zsyncProblems.push('no URL header: zsync 0.6.2 exits 3 even when seeds complete the file; zpump needs --url');
  const checks = wholeFileChecks(cf);
  const strongHash = strongHashOf(cf);
  if (strongHash !== 'MD4') zsyncProblems.push(`Strong-Hash-Algorithm ${strongHash}: zsync 0.6.x reads MD4 files only (zsync 0.7+ and the js engine read it)`);
  if (cf.hashLengths.rsumBytes === 1) problems.push('1-byte weak sums: the js engine matches them; zsync 0.6.2 never does and fetches every block');
  if (checks.unverified) problems.push(`File-Hash ${checks.unverified}: an algorithm zpump cannot compute, so the result is not verified as a whole`);
  else if (!checks.sha1 && !checks.sha256) problems.push('no SHA-1 or File-Hash header: the result can only be checked block by block');
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
    strongHash,
    fileHash: cf.fileHash ? `${cf.fileHash.algorithm}:${cf.fileHash.hex}` : null,
    verifiedWith: checks.sha256 ? 'SHA-256' : checks.sha1 ? 'SHA-1' : null,
    notes: cf.notes ?? [],
    signatureBytes: fileBytes,
    recordBytes: cf.records.length,
    gzipInside: Boolean(cf.gzip),
    extraHeaders: Object.fromEntries(cf.extraHeaders),
    usable: { js: !cf.gzip, zsync: zsyncProblems.length === 0 },
    problems: [...problems, ...zsyncProblems],
  };
}

/** An announcement: its fields, where the data is, its signature, and whether a subscriber takes it. */
async function inspectAnnouncement(path: string, flags: { json: boolean }): Promise<number> {
  let text: Uint8Array;
  try {
    text = path === '-' ? await readStdin() : await readFile(path);
  } catch (error) {
    throw fromSystemError(error, 'cannot read', path);
  }
  const m = parseAnnouncement(text);
  let accepted: { ok: boolean; problem?: string };
  try {
    checkMessage(m, { schemes: [...DEFAULT_SCHEMES, 'file'] });
    accepted = { ok: true };
  } catch (error) {
    accepted = { ok: false, problem: error instanceof Error ? error.message : String(error) };
  }
  const inline = m.zsync?.kind === 'inline' ? m.zsync.bytes : undefined;
  const signature = inline ? { form: 'inline', ...(accepted.ok ? describeControl(parseControlFile(inline), inline.length) : {}) } : m.zsync?.kind === 'reference' ? { form: 'reference', retrievePath: m.zsync.retrievePath, size: m.zsync.size ?? null, blockSize: m.zsync.blockSize ?? null, blocks: m.zsync.blockSize ? Math.ceil(m.size / m.zsync.blockSize) : null } : { form: 'none' };
  const fine = fineLevelOf(m);
  if (fine) Object.assign(signature, { fine });
  const info = { kind: 'announcement', relPath: m.relPath, baseUrl: m.baseUrl, dataUrl: dataUrlOrNull(m), size: m.size, mtime: m.mtime ?? null, pubTime: m.pubTime, identity: m.identity, fileOp: m.fileOp ?? null, signature, accepted };
  if (flags.json) {
    printJson({ path, ...info });
    return 0;
  }
  say(`${path}: announcement (${m.wnm ? `WIS2 notification, ${m.wnm.rel} link, id ${m.wnm.id ?? 'none'}` : 'v03'}) of ${m.relPath}${m.fileOp ? ` with fileOp ${JSON.stringify(m.fileOp)}` : ''}`);
  say(`  data          ${info.dataUrl ?? 'none: the URL policy refuses it (see below)'}`);
  say(`  size          ${m.size} (${formatBytes(m.size)})`);
  if (m.mtime) say(`  mtime         ${m.mtime}`);
  say(`  pubTime       ${m.pubTime}`);
  say(`  identity      ${m.identity.method} ${m.identity.value}`);
  if (inline && accepted.ok) {
    const s = signature as Record<string, unknown>;
    say(`  signature     inline, ${formatBytes(inline.length)} (${formatBytes(Math.ceil(inline.length / 3) * 4)} in base64): ${String(s.blocks)} blocks of ${formatBytes(Number(s.blockSize))}${fine ? ' (coarse level)' : ''}`);
  } else if (m.zsync?.kind === 'reference') {
    const z = m.zsync;
    say(`  signature     by reference: ${z.retrievePath}${z.size !== undefined ? `, ${formatBytes(z.size)}` : ''}${z.blockSize ? `: ${Math.ceil(m.size / z.blockSize)} blocks of ${formatBytes(z.blockSize)}` : ''}${fine ? ' (coarse level)' : ''}`);
  } else say(`  signature     none: a subscriber fetches the file whole`);
  if (fine && 'ignored' in fine) say(`  fine level    ignored: ${fine.ignored} (the coarse level is used alone)`);
  else if (fine) {
    say(`  fine level    ${fine.blocks} blocks of ${formatBytes(fine.blockSize)} in ${fine.url ?? fine.retrievePath} (${fine.size} bytes, ${formatBytes(fine.size)})`);
    if (fine.url === null) say(`  fine level    not fetched: ${fine.refused}`);
    say(`  fine identity ${fine.identity.method} ${fine.identity.value}`);
  }
  say(`  subscribe     ${accepted.ok ? `accepts it${/^file:/i.test(m.baseUrl) ? ' with --allow-file' : ''}` : `refuses it: ${accepted.problem}`}`);
  return 0;
}

export async function runInspect(control: string, flags: { json: boolean }): Promise<number> {
  if (control === '-' || /\.json$/i.test(control)) return inspectAnnouncement(control, flags);
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
  say(`  Hash-Lengths  ${h.seqMatches},${h.rsumBytes},${h.checksumBytes} (seq matches, weak bytes, ${strongHashOf(cf)} bytes: ${h.rsumBytes + h.checksumBytes} bytes a block)`);
  if (cf.strongHash !== undefined) say(`  Strong-Hash   ${cf.strongHash}`);
  for (const url of cf.urls) say(`  URL           ${url}${/^[a-z][a-z0-9+.-]*:/i.test(url) ? '' : '  (relative: resolved against the .zsync\'s own URL)'}`);
  if (cf.sha1 !== undefined || cf.fileHash === undefined) say(`  SHA-1         ${cf.sha1 ?? '(none)'}`);
  if (cf.fileHash !== undefined) say(`  File-Hash     ${cf.fileHash.algorithm}:${cf.fileHash.hex}${info.verifiedWith === null ? '  (not verified: unknown algorithm)' : ''}`);
  for (const [k, v] of cf.extraHeaders) say(`  ${k.padEnd(13)} ${v}`);
  const usable = info.usable as { js: boolean; zsync: boolean };
  say(`  usable by     js engine: ${usable.js ? 'yes' : 'no'}; zsync 0.6.2: ${usable.zsync ? 'yes' : 'no'}`);
  for (const p of [...(info.problems as string[]), ...(cf.notes ?? [])]) say(`  note          ${p}`);
  return 0;
}

type FineLevel =
  | { ignored: string }
  | { retrievePath: string; url: string | null; refused?: string; size: number; blockSize: number; blocks: number; identity: { method: string; value: string } };

/** The fine level of a two-level message: where it is (once through the URL check), its size and record count. */
function fineLevelOf(m: Announcement): FineLevel | undefined {
  if (!m.zsync) return undefined;
  if (m.zsync.fineIgnored !== undefined) return { ignored: m.zsync.fineIgnored };
  const f = m.zsync.fine;
  if (!f) return undefined;
  const usable = fineSignatureOf(m, { schemes: [...DEFAULT_SCHEMES, 'file'] });
  return {
    retrievePath: f.retrievePath,
    url: 'url' in usable ? usable.url : null,
    ...('why' in usable ? { refused: usable.why } : {}),
    size: f.size,
    blockSize: f.blockSize,
    blocks: Math.ceil(m.size / f.blockSize),
    identity: f.identity,
  };
}

/** The data URL, or null when the URL policy refuses it (the refusal is shown under "subscribe"). */
function dataUrlOrNull(m: Parameters<typeof dataUrlOf>[0]): string | null {
  try {
    return dataUrlOf(m);
  } catch {
    return null;
  }
}
