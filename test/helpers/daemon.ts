// Shared plumbing for the real servers: private temp dirs, child processes in their own process group,
// bounded readiness waits that quote the server's log, and a last-chance cleanup when the process exits.
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const cleanups = new Set<() => void>();
let netInstalled = false;

/** Run `fn` at process exit unless the returned function is called first (the normal stop path). */
export function onExit(fn: () => void): () => void {
  if (!netInstalled) {
    netInstalled = true;
    // 'exit' handlers must be synchronous: kill with signals and remove dirs with the sync API.
    process.on('exit', () => {
      for (const f of cleanups) {
        try {
          f();
        } catch {
          // best effort: the process is going away anyway
        }
      }
    });
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** A private dir under os.tmpdir(), removed at stop or at process exit. */
export async function makeTempDir(name: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `zpump-${name}-`));
  const cancel = onExit(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    async remove() {
      cancel();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** uid/gid of a system user, or undefined when there is no such user. */
export async function systemUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] && f[3]) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** chown -R, for servers that drop root privileges and then must write into their temp dir. */
export async function chownTree(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    await chown(path.join(entry.parentPath, entry.name), owner.uid, owner.gid);
  }
}

export async function logTail(logPath: string, lines = 40): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch((e: Error) => `(no log: ${e.message})`);
  return text.split('\n').slice(-lines).join('\n');
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Exit code (or signal name) once the process has exited, else undefined. */
  exitStatus(): string | undefined;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM to the process group, SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export interface LaunchOptions {
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/**
 * Start a server in the foreground as our child, in its own process group (detached) so that stop()
 * also reaches its workers and helpers (nginx workers, sshd sessions, erl_child_setup), by id, not by name.
 * stdout and stderr go straight to logPath: no pipe that could fill up and block the server.
 */
export async function launch(name: string, cmd: string, args: string[], opts: LaunchOptions): Promise<Daemon> {
  const fd = openSync(opts.logPath, 'a');
  let child;
  try {
    child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`${name}: cannot start ${cmd}: ${e.message}`)));
  });
  const pid = child.pid!;
  let status: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      status = signal ?? String(code);
      resolve();
    }),
  );
  // A test that forgets stop() must not keep the worker alive; stop() re-refs while it waits.
  child.unref();
  const cancel = onExit(() => killGroup(pid, 'SIGKILL'));

  return {
    name,
    pid,
    logPath: opts.logPath,
    exited,
    exitStatus: () => status,
    async stop(graceMs = 5000) {
      child.ref();
      try {
        if (status === undefined) {
          killGroup(pid, 'SIGTERM');
          const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
          if (timedOut) {
            killGroup(pid, 'SIGKILL');
            await exited;
          }
        }
        // Helpers that outlived the leader (same group) go too.
        killGroup(pid, 'SIGKILL');
      } finally {
        cancel();
        child.unref();
      }
    },
  };
}

/**
 * Poll `ready()` until it is true. Fails early when the server has exited, and after timeoutMs otherwise,
 * quoting the server's log tail either way: a bare "timeout" would say nothing about why.
 */
export async function waitUntilReady(
  daemon: Daemon,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (daemon.exitStatus() !== undefined) {
      throw new Error(
        `${daemon.name} exited (${daemon.exitStatus()}) before it was ready. Log ${daemon.logPath}:\n${await logTail(daemon.logPath)}`,
      );
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${daemon.name} not ready after ${timeoutMs} ms. Log ${daemon.logPath}:\n${await logTail(daemon.logPath)}`,
      );
    }
    await sleep(intervalMs);
  }
}
