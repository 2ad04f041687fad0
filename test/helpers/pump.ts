// Long-running zpump processes (watch, subscribe) for end-to-end tests, and tree comparison.

import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI } from './cli.js';

export interface Running {
  /** Everything written to stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Wait until stderr matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Wait for it to end by itself; resolves with the exit code. */
  exited(): Promise<number>;
  readonly pid: number;
}

export function startCli(args: string[]): Running {
  const child: ResultPromise = execa(process.execPath, [CLI, ...args], { reject: false, stdin: 'ignore', buffer: false });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  void child.then(() => (exited = true));
  return {
    pid: child.pid ?? 0,
    stderr: () => err,
    stdout: () => out,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(err)) {
        if (exited) throw new Error(`zpump ${args[0]} exited before printing ${pattern}:\n${err}`);
        if (Date.now() > deadline) throw new Error(`zpump ${args[0]} did not print ${pattern} within ${timeoutMs} ms:\n${err}`);
        await sleep(50);
      }
    },
    async exited() {
      const result = await child;
      return result.exitCode ?? 1;
    },
    async kill(signal = 'SIGTERM') {
      if (!exited) child.kill(signal);
      await child;
    },
  };
}

/**
 * relPath → sha1 of every file under dir, skipping zpump's own state folder and .zsync files (a
 * publisher's signatures: two-level announcements leave FILE.zsync beside each file, and zpump
 * never announces one as data).
 */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath ?? entry.path, entry.name);
    const rel = relative(dir, path);
    if (rel.split('/')[0] === '.zpump' || rel.endsWith('.zsync')) continue;
    const bytes = await readFile(path).catch(() => undefined); // temporaries come and go
    if (bytes) out[rel] = createHash('sha1').update(bytes).digest('hex');
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Poll until both trees hold the same files with the same bytes. */
export async function waitForSameTrees(a: string, b: string, timeoutMs = 60_000, why = ''): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const [da, db] = await Promise.all([treeDigest(a), treeDigest(b)]);
    if (JSON.stringify(da) === JSON.stringify(db)) return da;
    last = `publisher: ${JSON.stringify(da)}\nsubscriber: ${JSON.stringify(db)}`;
    if (Date.now() > deadline) throw new Error(`trees still differ after ${timeoutMs} ms ${why}\n${last}`);
    await sleep(200);
  }
}
