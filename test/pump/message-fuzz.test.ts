// A few thousand mutated announcements (fixed seed) through the parser and the subscriber's
// checks: each is either accepted or refused with a ZpumpError, never a TypeError, RangeError or
// a hang. Mutations act on the JSON object (hostile values in every field) and on the raw text.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZpumpError } from '../../src/errors.js';
import { dataUrlOf, parseAnnouncement, renderAnnouncement } from '../../src/format/announcement.js';
import { buildFileMessage, buildRemoveMessage, checkMessage } from '../../src/pump/message.js';
import { seededBytes } from '../helpers/data.js';

/** xorshift32: the same sequence on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

const HOSTILE_STRINGS = [
  '', '.', '..', '../../etc/passwd', '/etc/passwd', 'a/../../b', '%2e%2e/%2e%2e/x', 'a%2F..%2F..%2Fb', 'a\\b', 'C:/x', 'a\0b', 'x\ny', '\u2028',
  'file:///etc/passwd', 'file:///dev/zero', 'http://127.0.0.1/', 'http://[::1', 'sftp://u@h:22/x/', 'gopher://h/', 'javascript:alert(1)', 'http://h/%zz',
  '.keep.txt.zpump-lock', '.zpump/rejected/x', 'a.zpump-tmp', 'none', 'md5', 'sha512', 'MD5', 'arbitrary',
  '20261124T162730', '99991231T235959', '20261332T000000', '00000101T000000', 'garbage', '20261124T162730.1234567890',
  'A'.repeat(5000), '===', 'AAAA', 'zsync-0.6.2',
];

function randomValue(next: () => number, depth = 0): unknown {
  const r = next();
  if (r < 0.35) return HOSTILE_STRINGS[Math.floor(next() * HOSTILE_STRINGS.length)];
  if (r < 0.5) return [0, -1, 1, 2 ** 31, 2 ** 40, 2 ** 53, 2 ** 64, 1.5, -0, 1e308][Math.floor(next() * 10)];
  if (r < 0.6) return [null, true, false][Math.floor(next() * 3)];
  if (r < 0.7) return String(Math.floor(next() * 1e6));
  if (depth > 1) return 'x';
  if (r < 0.85) {
    const o: Record<string, unknown> = {};
    for (const key of ['method', 'value', 'retrievePath', 'size', 'encoding', 'rename', 'remove', 'blockSize'].filter(() => next() < 0.4)) o[key] = randomValue(next, depth + 1);
    return o;
  }
  return [randomValue(next, depth + 1), randomValue(next, depth + 1)];
}

function mutateObject(message: Record<string, unknown>, next: () => number): Record<string, unknown> {
  const out = structuredClone(message);
  const rounds = 1 + Math.floor(next() * 3);
  for (let i = 0; i < rounds; i++) {
    const keys = ['pubTime', 'baseUrl', 'relPath', 'retrievePath', 'retPath', 'size', 'mtime', 'identity', 'integrity', 'zsync', 'fileOp'];
    const key = keys[Math.floor(next() * keys.length)]!;
    const target = next() < 0.3 && typeof out[key] === 'object' && out[key] !== null && !Array.isArray(out[key]) ? (out[key] as Record<string, unknown>) : out;
    const field = target === out ? key : Object.keys(target)[Math.floor(next() * Object.keys(target).length)] ?? 'value';
    if (next() < 0.15) delete target[field];
    else target[field] = randomValue(next);
  }
  return out;
}

function mutateText(text: string, next: () => number): string {
  const at = Math.floor(next() * text.length);
  const r = next();
  if (r < 0.3) return text.slice(0, at);
  if (r < 0.6) return text.slice(0, at) + String.fromCharCode(Math.floor(next() * 128)) + text.slice(at + 1);
  if (r < 0.8) return text.slice(0, at) + text.slice(at, at + 40) + text.slice(at);
  return text.slice(0, at) + JSON.stringify(HOSTILE_STRINGS[Math.floor(next() * HOSTILE_STRINGS.length)]) + text.slice(at);
}

describe('announcement fuzz', () => {
  let tmp: DirectoryResult;
  const seeds: Record<string, unknown>[] = [];
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    await writeFile(join(tmp.path, 'f.bin'), seededBytes(40_000, 7));
    const inline = await buildFileMessage({ path: join(tmp.path, 'f.bin'), root: tmp.path, baseUrl: 'http://h/pub/', threshold: 0, engine: 'js' });
    const reference = await buildFileMessage({ path: join(tmp.path, 'f.bin'), root: tmp.path, baseUrl: 'sftp://u@h/pub/', threshold: 0, inlineLimit: 10, engine: 'js' });
    const remove = buildRemoveMessage(tmp.path, join(tmp.path, 'f.bin'), 'https://h/');
    for (const m of [inline.message, reference.message, remove]) seeds.push(JSON.parse(renderAnnouncement(m)) as Record<string, unknown>);
  });
  afterAll(async () => {
    await tmp?.cleanup();
  });

  it('accepts or refuses 3000 mutated messages with a ZpumpError, nothing else', () => {
    const next = prng(0x5eed);
    const outcomes = { accepted: 0, refused: 0 };
    for (let i = 0; i < 3000; i++) {
      const seed = seeds[i % seeds.length]!;
      const object = mutateObject(seed, next);
      const text = next() < 0.3 ? mutateText(JSON.stringify(object), next) : JSON.stringify(object);
      for (const options of [{}, { schemes: ['http', 'https', 'sftp', 'file'], acceptUnverified: true }]) {
        try {
          const message = parseAnnouncement(text);
          checkMessage(message, options);
          dataUrlOf(message, { schemes: ['http', 'https', 'sftp', 'file'] });
          outcomes.accepted++;
        } catch (error) {
          if (!(error instanceof ZpumpError)) throw new Error(`case ${i}: ${String(error)} for ${text.slice(0, 300)}`);
          outcomes.refused++;
        }
      }
    }
    // The mutator must reach both sides, or it tests nothing.
    expect(outcomes.accepted).toBeGreaterThan(100);
    expect(outcomes.refused).toBeGreaterThan(1000);
  });
});
