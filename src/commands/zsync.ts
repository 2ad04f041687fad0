// zpump zsync ARGS... : the js engine behind the zsync 0.6.2 client's flags, so scripts written
// for zsync run where it is not installed — and with https. Exit codes follow zsync's:
// 0 done, 1 unusable control file, 2 download or verification failed, 3 usage or control fetch;
// an unknown flag, which zsync itself only warns about, is refused with 2.

import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { sync } from '../api.js';
import { isZpumpError, ZpumpError } from '../errors.js';
import { readControlFile } from '../local/control-file-io.js';

export const ZSYNC_USAGE = `usage: zpump zsync [-u referer] [-i seed]... [-o outfile] [-q|-s] [-k saved.zsync] <path-or-URL of .zsync>
The js engine with the zsync 0.6.2 client's flags; also fetches https:// URLs.`;

function parseZsyncArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      u: { type: 'string', short: 'u' },
      i: { type: 'string', short: 'i', multiple: true },
      o: { type: 'string', short: 'o' },
      k: { type: 'string', short: 'k' },
      A: { type: 'string', short: 'A', multiple: true },
      q: { type: 'boolean', short: 'q' },
      s: { type: 'boolean', short: 's' },
      V: { type: 'boolean', short: 'V' },
      h: { type: 'boolean', short: 'h' },
    },
  });
}

export async function runZsync(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseZsyncArgs(argv);
  } catch (error) {
    // zsync 0.6.2 warns about an unknown flag and carries on; a drop-in that did the same would
    // hide a typo or a flag it does not implement, so it stops (usage error, exit 2).
    const unknown = /Unknown option '([^']+)'/.exec(error instanceof Error ? error.message : '')?.[1];
    const why = unknown ? `unknown option ${unknown} (the drop-in takes -u -i -o -k -A -q -s -V -h)` : error instanceof Error ? error.message : String(error);
    process.stderr.write(`zpump zsync: ${why}\n${ZSYNC_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.h) { process.stdout.write(ZSYNC_USAGE + '\n'); return 0; }
  if (values.V) { process.stdout.write('zsync v0.6.2 (zpump js engine)\n'); return 0; }
  const quiet = Boolean(values.q || values.s);
  if (positionals.length !== 1) {
    process.stderr.write(ZSYNC_USAGE + '\n');
    return 3;
  }
  if (values.A) {
    process.stderr.write('zpump zsync: -A (HTTP basic auth) is not supported yet\n');
    return 3;
  }
  const control = positionals[0]!;
  try {
    const output = (values.o as string | undefined) ?? (await defaultOutput(control));
    const result = await sync({
      control,
      target: output,
      seeds: (values.i as string[] | undefined) ?? [],
      baseUrl: values.u as string | undefined,
      saveControlAs: values.k as string | undefined,
      engine: 'js',
    });
    if (!quiet) {
      process.stdout.write(result.verified ? 'verifying download...checksum matches OK\n' : 'no recognised checksum found\n');
      process.stdout.write(`used ${result.bytesReused} local, fetched ${result.bytesFetched}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`zsync: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!isZpumpError(error)) return 2;
    if (error.code === 'E_USAGE' || (error.code === 'E_BAD_INPUT' && !(error.data as { block?: number }).block)) return 3;
    if (error.code === 'E_BAD_CONTROL' || error.code === 'E_UNSUPPORTED') return 1;
    return 2;
  }
}

// zsync 0.6.2's rule: Filename if it has no '/' and starts with the leading alphanumeric run of
// the .zsync's own name; else that run; else "zsync-download".
async function defaultOutput(control: string): Promise<string> {
  const prefix = /^[A-Za-z0-9]*/.exec(basename(control.replace(/[?#].*$/, '')))![0];
  let filename: string | undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(control)) filename = (await readControlFile(control)).control.filename;
  else {
    const { fetchDocument } = await import('../transport/http.js');
    const { parseControlFile } = await import('../format/control-file.js');
    filename = parseControlFile((await fetchDocument(control)).bytes).filename;
  }
  if (filename && !filename.includes('/') && prefix && filename.startsWith(prefix)) return filename;
  if (prefix) return prefix;
  throw new ZpumpError('E_USAGE', 'cannot derive an output name: give -o');
}
