import { accessSync, constants } from 'node:fs';
import path from 'node:path';

// sbin is often missing from PATH for non-root users, yet nginx, sshd, rabbitmq-server and mosquitto live there.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of a tool (name on PATH or an absolute path), or undefined when it is not installed. */
export function findTool(name: string): string | undefined {
  if (path.isAbsolute(name)) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

const warned = new Set<string>();

/**
 * Skip policy for tests that need a real tool. Installed: true. Missing on a developer machine: false
 * (use with `describe.skipIf(!requireTool(...))`). Missing under CI=true: throws, because a CI run that
 * silently skips the real-server tests would prove nothing.
 */
export function requireTool(name: string, aptPackage: string): boolean {
  if (findTool(name)) return true;
  const hint = `${name} is not installed (Debian/Ubuntu: apt-get install ${aptPackage})`;
  if (process.env.CI === 'true') {
    throw new Error(`${hint}. CI=true: tests that need it must run, not be skipped.`);
  }
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(`[zpump tests] skipping tests that need ${name}: ${hint}`);
  }
  return false;
}
