// Temporaries must not outlive the process that made them, whichever way it ends: `finally`
// covers errors, this covers process.exit() and SIGTERM/SIGINT. On a signal the helper
// processes (zsync) are killed first, so nothing writes into a folder being removed; then, if no
// one else listens for the signal, the process ends as the signal would have ended it (a command
// like `zpump subscribe` that handles signals itself keeps control of its shutdown).

import { rmSync } from 'node:fs';

interface Entry {
  path: string;
  kill?: () => void;
}

// Not SIGHUP: listening for it would undo `nohup` (a hang-up would then end the process).
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
const live = new Set<Entry>();
let installed = false;
let interruptedBy: NodeJS.Signals | undefined;

/** The signal that interrupted this process's work, if one did. */
export function interruption(): NodeJS.Signals | undefined {
  return interruptedBy;
}

function cleanNow(): void {
  const entries = [...live];
  live.clear();
  for (const e of entries) {
    try {
      e.kill?.();
    } catch {
      // already gone
    }
  }
  for (const e of entries) {
    try {
      rmSync(e.path, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The next run removes it (its owner is then gone).
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  interruptedBy = signal;
  cleanNow();
  const othersListen = process.listenerCount(signal) > 1;
  uninstall();
  if (!othersListen) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  // First in line: a command's own `once` listener removes itself before it runs, so only from
  // the front can we tell whether anyone else will handle the signal.
  for (const s of SIGNALS) process.prependListener(s, onSignal);
  process.on('exit', cleanNow);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', cleanNow);
}

/** Remove `path` (file or folder) if the process ends or is interrupted; returns the undo. */
export function removeOnExit(path: string, kill?: () => void): () => void {
  const entry: Entry = { path, ...(kill ? { kill } : {}) };
  live.add(entry);
  install();
  return () => {
    live.delete(entry);
    if (live.size === 0) uninstall();
  };
}
