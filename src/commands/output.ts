// Everything the commands print goes through here: human lines on stderr/stdout, JSON lines for
// scripts, and progress bars only when stderr is a terminal and no JSON was asked for.

import { ZpumpError, isZpumpError } from '../errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function say(line: string): void {
  process.stdout.write(line + '\n');
}

export function warn(line: string): void {
  process.stderr.write(`zpump: ${line}\n`);
}

export function errorJson(error: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const e = isZpumpError(error) ? error : new ZpumpError('E_INTERNAL', error instanceof Error ? error.message : String(error));
  return { ...extra, ...e.toJSON() };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v >= 100 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export interface Progress {
  update(value: number, total?: number): void;
  stop(): void;
}

const silent: Progress = { update() {}, stop() {} };

/** A bar on stderr when it is a terminal; nothing otherwise (pipes, --json, CI logs). */
export async function startProgress(label: string, total: number, enabled: boolean): Promise<Progress> {
  return (await progressMaker(enabled))(label, total);
}

/** Load the bar library once, then start bars synchronously (for phase changes inside callbacks). */
export async function progressMaker(enabled: boolean): Promise<(label: string, total: number) => Progress> {
  if (!enabled || !process.stderr.isTTY) return () => silent;
  const { default: cliProgress } = await import('cli-progress');
  return (label, total) => (total > 0 ? bar(cliProgress, label, total) : silent);
}

function bar(cliProgress: typeof import('cli-progress'), label: string, total: number): Progress {
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {done} of {size} | {eta_formatted} left`, hideCursor: true, clearOnComplete: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total) });
  return {
    update(value, newTotal) {
      if (newTotal !== undefined && newTotal !== total) { total = newTotal; bar.setTotal(total); }
      bar.update(value, { done: formatBytes(value), size: formatBytes(total) });
    },
    stop() { bar.stop(); },
  };
}
