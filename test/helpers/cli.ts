// Runs the built CLI (dist/cli.js, built by `npm test`'s pretest) as a user would.

import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string | Uint8Array; inputFile?: string } = {}): Promise<CliRun> {
  const run = await execa(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: options.env,
    reject: false,
    stripFinalNewline: false,
    ...(options.inputFile !== undefined ? { inputFile: options.inputFile } : { input: options.input ?? '' }),
  });
  return { exitCode: run.exitCode ?? 1, stdout: String(run.stdout), stderr: String(run.stderr) };
}
