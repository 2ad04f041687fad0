// `announce --format wis2`: every message validates against the WNM 1.1.0 schema and stays within
// the 8 192-byte cap, from empty files to sparse ones of hundreds of MiB through the real command,
// and up to 64 GiB through the same sizing the builder uses (hashing 64 GiB would take minutes).

import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAnnouncement, v03Time, type Announcement } from '../../src/format/announcement.js';
import { autoBlockSize, recordBytes } from '../../src/format/hash-lengths.js';
import { WNM_MAX_BYTES } from '../../src/format/wnm.js';
import { wnmInlineLimit } from '../../src/pump/message.js';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { wnmSchemaErrors } from '../helpers/wnm-schema.js';

let tmp: DirectoryResult;
beforeAll(async () => {
  tmp = await dir({ unsafeCleanup: true });
});
afterAll(async () => {
  await tmp.cleanup();
});

const MiB = 1 << 20;
const GiB = 1 << 30;
// Five 60-character folders: long paths leave the least room for the signature.
const LONG = Array.from({ length: 5 }, (_, i) => String.fromCharCode(97 + i).repeat(60)).join('/');

async function sparse(path: string, size: number, seed: number): Promise<void> {
  const f = await open(path, 'w');
  try {
    // A little real data at both ends, holes between: the signature still covers every block.
    await f.write(seededBytes(Math.min(size, 4096), seed), 0, Math.min(size, 4096), 0);
    await f.truncate(size);
  } finally {
    await f.close();
  }
}

function check(line: string): Record<string, any> {
  expect(Buffer.byteLength(line)).toBeLessThanOrEqual(WNM_MAX_BYTES);
  const json = JSON.parse(line) as Record<string, any>;
  expect(wnmSchemaErrors(json)).toEqual([]);
  return json;
}

describe('announce --format wis2', () => {
  it.each([
    ['0 B', 0, ''],
    ['1 B', 1, ''],
    ['just under the threshold', MiB - 1, ''],
    ['at the threshold', MiB, ''],
    ['7 MiB under long folders', 7 * MiB, LONG],
    ['256 MiB sparse', 256 * MiB, ''],
    ['256 MiB sparse under long folders', 256 * MiB, LONG],
  ])('%s: a valid WNM of at most 8 192 bytes', async (_what, size, folders) => {
    const root = join(tmp.path, `r${size}-${folders.length}`);
    await mkdir(join(root, folders), { recursive: true });
    const path = join(root, folders, 'data.grib2');
    if (size <= 8 * MiB) await writeFile(path, seededBytes(size, size + 1));
    else await sparse(path, size, 3);
    const run = await runCli(['announce', '--format', 'wis2', '--data-id-prefix', 'xx-zpump/data/core', '--base-url', 'https://data.example.org/pub', '--root', root, '--engine', 'js', path]);
    expect(run.stderr).toMatch(/announced/);
    expect(run.exitCode).toBe(0);
    const json = check(run.stdout.trim());
    const rel = (folders ? `${folders}/` : '') + 'data.grib2';
    expect(json.properties.data_id).toBe(`xx-zpump/data/core/${rel}`);
    expect(json.links[0]).toEqual({ rel: 'canonical', href: `https://data.example.org/pub/${rel}`, type: 'application/grib', length: size });
    if (size >= MiB) expect(json.properties.zsync).toBeDefined();
    // A signature that did not fit went by reference, published beside the data.
    if (json.properties.zsync?.retrievePath) expect(json.properties.zsync.retrievePath).toBe('data.grib2.zsync');
  });

  it('--geometry goes in as given; one the schema would refuse is a usage error', async () => {
    const root = join(tmp.path, 'geo');
    await mkdir(root);
    await writeFile(join(root, 'obs.bufr4'), 'x');
    const run = await runCli(['announce', '--format', 'wis2', '--geometry', '{"type":"Point","coordinates":[6.15,46.22]}', '--base-url', 'http://h/', '--root', root, join(root, 'obs.bufr4')]);
    expect(run.exitCode).toBe(0);
    const json = check(run.stdout.trim());
    expect(json.geometry).toEqual({ type: 'Point', coordinates: [6.15, 46.22] });
    expect(json.links[0].type).toBe('application/bufr');
    // inspect reads it as what it is.
    await writeFile(join(root, 'wnm.json'), run.stdout);
    const shown = await runCli(['inspect', join(root, 'wnm.json')]);
    expect(shown.stdout + shown.stderr).toMatch(new RegExp(`announcement \\(WIS2 notification, canonical link, id ${json.id}\\) of obs\\.bufr4`));
    const bad = await runCli(['announce', '--format', 'wis2', '--geometry', '{"type":"Line"}', '--base-url', 'http://h/', '--root', root, join(root, 'obs.bufr4')]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--geometry must be a GeoJSON Point/);
  });

  it('says so, exit 2, when even a signature by reference cannot fit', async () => {
    const root = join(tmp.path, 'deep');
    // Within PATH_MAX, but named twice (data_id and href) it cannot fit 8 192 bytes.
    const deep = Array.from({ length: 19 }, () => 'd'.repeat(200)).join('/');
    await mkdir(join(root, deep), { recursive: true });
    await writeFile(join(root, deep, 'f'), 'x');
    const run = await runCli(['announce', '--format', 'wis2', '--data-id-prefix', 'p'.repeat(600), '--base-url', 'http://h/', '--root', root, join(root, deep, 'f')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/over the 8192-byte cap/);
    expect(run.stdout).toBe('');
  });

  // The same arithmetic as buildFileMessage, for sizes too large to hash in a test: the room
  // left by the rest of the message sets the budget, the block size follows, and a signature
  // that still does not fit goes by reference.
  it.each([1 * GiB, 4 * GiB, 16 * GiB, 64 * GiB])('%d bytes: the message the builder would make fits and validates', (size) => {
    for (const relPath of ['x.nc', `${LONG}/data.grib2`]) {
      const message: Announcement = {
        pubTime: v03Time(Date.now()),
        baseUrl: 'https://data.example.org/pub',
        relPath,
        size,
        mtime: v03Time(Date.now()),
        identity: { method: 'sha512', value: Buffer.alloc(64).toString('base64') },
        wnm: { dataId: `xx-zpump/data/core/${relPath}`, rel: 'update' },
        extra: {},
      };
      const limit = wnmInlineLimit(message);
      const blockSize = autoBlockSize(size, Math.floor((limit * 3) / 4));
      const signature = 400 + recordBytes(size, blockSize); // a .zsync header is under 400 bytes
      message.zsync = Math.ceil(signature / 3) * 4 <= limit
        ? { kind: 'inline', bytes: new Uint8Array(signature), blockSize }
        : { kind: 'reference', retrievePath: `${relPath}.zsync`, size: signature, identity: { method: 'sha512', value: Buffer.alloc(64).toString('base64') } };
      check(renderAnnouncement(message));
    }
  });
});
