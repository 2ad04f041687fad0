// Two-level messages made by hand for the tests (until and beside the publisher): the data and a
// fine NAME.zsync on a real nginx (and sshd), the coarse signature inline in the message.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, expect } from 'vitest';
import { make } from '../../src/api.js';
import { renderAnnouncement, v03Time } from '../../src/format/announcement.js';
import { runCli } from './cli.js';
import { concat, scattered, seededBytes } from './data.js';
import { startNginx, type NginxServer } from './nginx.js';
import { startSshd, type SshdServer } from './sshd.js';

export const COARSE = 256 << 10;
export const FINE = 2048;
export const SIZE = (4 << 20) + 777; // a last partial block at both levels
export const OLD = seededBytes(SIZE, 21);

export { concat, scattered };
export const sha512 = (data: Uint8Array): string => createHash('sha512').update(data).digest('base64');
export const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** `data` with `n` bytes flipped at `offset`. */
export function flipped(data: Uint8Array, offset: number, n = 1): Uint8Array {
  const out = new Uint8Array(data);
  for (let i = offset; i < offset + n && i < out.length; i++) out[i] = out[i]! ^ 0x5a;
  return out;
}

export interface Published {
  message: string;
  finePath: string;
  fine: Uint8Array;
}

export interface TwoLevelEnv {
  tmp: DirectoryResult;
  www: string;
  work: string;
  nginx: NginxServer;
  sshd?: SshdServer;
  /** Put `data` on the server as `name` with a fine NAME.zsync; the message carries the coarse one inline. */
  publish(name: string, data: Uint8Array, baseUrl?: string, fineBlock?: number): Promise<Published>;
  /** `zpump sync --json --engine js` of a message; exit 0 expected. */
  syncJson(message: string, target: string, extra?: string[]): Promise<Record<string, any>>;
  noTemporaries(): Promise<void>;
}

/** Servers and folders for one test file (started in beforeAll, stopped in afterAll). */
export function twoLevelEnv(options: { sshd?: boolean } = {}): TwoLevelEnv {
  const env = {} as TwoLevelEnv;
  beforeAll(async () => {
    env.tmp = await dir({ unsafeCleanup: true });
    env.www = join(env.tmp.path, 'www');
    env.work = join(env.tmp.path, 'work');
    await mkdir(env.www, { recursive: true });
    await mkdir(env.work, { recursive: true });
    env.nginx = await startNginx({ root: env.www });
    if (options.sshd) env.sshd = await startSshd();
  });
  afterAll(async () => {
    await env.nginx?.stop();
    await env.sshd?.stop();
    await env.tmp?.cleanup();
  });
  env.publish = async (name, data, baseUrl = env.nginx.url, fineBlock = FINE) => {
    const file = join(env.www, name);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, data);
    const coarsePath = join(env.tmp.path, `${name.replace(/\//g, '_')}.coarse.zsync`);
    const finePath = `${file}.zsync`;
    await make({ input: file, output: coarsePath, blockSize: COARSE, engine: 'js', force: true });
    await make({ input: file, output: finePath, blockSize: fineBlock, engine: 'js', force: true });
    const coarse = await readFile(coarsePath);
    const fine = await readFile(finePath);
    const message = renderAnnouncement({
      pubTime: v03Time(Date.now()), baseUrl, relPath: name, size: data.length, identity: { method: 'sha512', value: sha512(data) },
      zsync: { kind: 'inline', bytes: coarse, blockSize: COARSE, fine: { retrievePath: `${name}.zsync`, size: fine.length, blockSize: fineBlock, identity: { method: 'sha512', value: sha512(fine) } } },
      extra: {},
    });
    return { message, finePath, fine };
  };
  env.syncJson = async (message, target, extra = []) => {
    const run = await runCli(['sync', '--json', '--engine', 'js', ...extra, '-', target], { input: message });
    expect(run.exitCode, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Record<string, any>;
  };
  env.noTemporaries = async () => {
    expect((await readdir(env.work)).filter((n) => n.includes('zpump-tmp'))).toEqual([]);
  };
  return env;
}
