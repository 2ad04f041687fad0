// The subscriber: takes deliveries from a bus and applies each announcement to the local tree.
// Order of checks: parse (size limit, JSON, fields) → message checks (schemes, relPath,
// signature vs size) → local path inside --dir → per-file lock → newer-wins → sync (delta when
// there is a signature and a local copy, whole otherwise) → verify → rename → ack.
// Refusals are final (set aside at once); transfer failures are retried with backoff, then set
// aside too, so one poison message never blocks the queue.

import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sync, type SyncOutcome } from '../api.js';
import type { EngineChoice } from '../backends/types.js';
import { isZpumpError, type ErrorCode } from '../errors.js';
import { DEFAULT_MESSAGE_LIMIT, parseAnnouncement, parseV03Time, type Announcement } from '../format/announcement.js';
import { writeFileAtomically } from '../local/atomic-file.js';
import { withFileLock } from '../local/lock-file.js';
import type { OpenOptions } from '../transport/open.js';
import type { ConsumeOptions, Delivery, Source } from './bus/types.js';
import { DEFAULT_SCHEMES, checkMessage, isRemove, localPathFor, makeParents, renamedFrom } from './message.js';

export interface SubscriberOptions {
  dir: string;
  schemes?: readonly string[];
  messageLimit?: number;
  engine?: EngineChoice;
  transport?: OpenOptions;
  /** Attempts after the first one for transfer failures (default 3). */
  retries?: number;
  /** First retry delay; doubles each time (default 1 s). */
  retryDelayMs?: number;
  /** Where refused messages are kept when the bus has no place of its own (spool has rejected/). */
  rejectedDir?: string;
  report: (report: ApplyReport) => void;
  log: (line: string) => void;
}

export type ApplyAction = 'delta' | 'whole' | 'removed' | 'up-to-date' | 'older' | 'absent' | 'superseded';

export interface ApplyReport {
  id: string;
  relPath: string;
  action: ApplyAction;
  engine?: string;
  length?: number;
  bytesReused?: number;
  bytesFetched?: number;
  seconds: number;
  renamedFrom?: string;
  /** Why a delta sync was abandoned for a whole download, or why zsync gave way to js. */
  fallback?: string;
  attempts: number;
}

/** Refusals: the message is wrong, trying again cannot help. */
const FINAL: ReadonlySet<ErrorCode> = new Set(['E_BAD_MESSAGE', 'E_UNSAFE_PATH', 'E_USAGE', 'E_UNSUPPORTED', 'E_BAD_INPUT', 'E_BAD_CONTROL']);

export class Subscriber {
  private readonly chains = new Map<string, Promise<unknown>>();
  /** The latest arrival per file: an older message still waiting for its turn is skipped. */
  private readonly latest = new Map<string, number>();
  private arrivals = 0;
  applied = 0;
  setAside = 0;

  constructor(private readonly options: SubscriberOptions) {}

  /** Consume `source` until it ends (once) or `signal` aborts. */
  async run(source: Source, consume: Omit<ConsumeOptions, 'log'>): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    const refused = (id: string, reason: string): void => {
      this.setAside++;
      this.options.log(`refused ${id}: ${reason}`);
    };
    await source.consume((delivery) => this.take(delivery, source.keepsRejected === true), { messageLimit: this.options.messageLimit ?? DEFAULT_MESSAGE_LIMIT, refused, ...consume, log: this.options.log });
  }

  /** Apply one delivery, then ack it or set it aside; never throws. */
  async take(delivery: Delivery, busKeepsRejected: boolean): Promise<void> {
    try {
      const report = await this.applyBody(delivery.body, delivery.id);
      this.applied++;
      this.options.report(report);
      await delivery.ack();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.setAside++;
      this.options.log(`refused ${delivery.id}: ${reason}`);
      try {
        if (!busKeepsRejected) await this.keepRejected(delivery, reason);
        await delivery.setAside(reason);
      } catch (keepError) {
        this.options.log(`could not set ${delivery.id} aside: ${keepError instanceof Error ? keepError.message : String(keepError)}`);
      }
    }
  }

  private async keepRejected(delivery: Delivery, reason: string): Promise<void> {
    const dir = this.options.rejectedDir;
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    const name = `${Date.now()}-${process.pid}-${delivery.id.replace(/[^A-Za-z0-9._-]+/g, '_')}`.slice(0, 200);
    await writeFileAtomically(join(dir, `${name}.json`), delivery.body);
    await writeFileAtomically(join(dir, `${name}.json.reason.txt`), `${reason}\n`);
  }

  /** Parse, check and apply; resolves with what was done, throws a ZpumpError when refused or failed for good. */
  async applyBody(body: Uint8Array, id = 'message'): Promise<ApplyReport> {
    const arrival = ++this.arrivals; // before any await: arrival order is delivery order
    const message = parseAnnouncement(body, this.options.messageLimit ?? DEFAULT_MESSAGE_LIMIT);
    checkMessage(message, { schemes: this.options.schemes ?? DEFAULT_SCHEMES });
    const target = await localPathFor(this.options.dir, message.relPath);
    if ((this.latest.get(target) ?? 0) < arrival) this.latest.set(target, arrival);
    try {
      return await this.serialized(target, () => this.withRetries(message, target, id, arrival));
    } finally {
      if (this.latest.get(target) === arrival) this.latest.delete(target);
    }
  }

  /** Messages for one file are applied one after the other, in the order they arrived. */
  private async serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.chains.get(key) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    this.chains.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.chains.get(key) === mine) this.chains.delete(key);
    }
  }

  private async withRetries(message: Announcement, target: string, id: string, arrival: number): Promise<ApplyReport> {
    const retries = this.options.retries ?? 3;
    for (let attempt = 1; ; attempt++) {
      // A newer message for this file arrived meanwhile: it wins, this one has nothing left to do.
      if (this.latest.get(target) !== arrival) return { id, relPath: message.relPath, action: 'superseded', seconds: 0, attempts: attempt - 1 };
      try {
        return { ...(await this.apply(message, target, id)), attempts: attempt };
      } catch (error) {
        const final = isZpumpError(error) && FINAL.has(error.code);
        if (final || attempt > retries) {
          if (!final && error instanceof Error) error.message = `${message.relPath}: failed ${attempt} times, last: ${error.message}`;
          throw error;
        }
        const delay = (this.options.retryDelayMs ?? 1000) * 2 ** (attempt - 1);
        this.options.log(`${message.relPath}: attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay);
      }
    }
  }

  private async apply(message: Announcement, target: string, id: string): Promise<Omit<ApplyReport, 'attempts'>> {
    const started = performance.now();
    const base = { id, relPath: message.relPath };
    const seconds = (): number => Math.round(performance.now() - started) / 1000;
    // A removal of something never received must not leave empty folders behind.
    if (isRemove(message) && !(await stat(dirname(target)).catch(() => undefined))) return { ...base, action: 'absent', seconds: seconds() };
    await makeParents(target);
    return withFileLock(target, async () => {
      const announcedMs = parseV03Time(message.mtime ?? message.pubTime) ?? 0;
      if (isRemove(message)) {
        const local = await stat(target).catch(() => undefined);
        if (!local) return { ...base, action: 'absent', seconds: seconds() };
        // A file written after the removal was announced is a newer version: keep it.
        if (local.mtimeMs > (parseV03Time(message.pubTime) ?? Infinity) + 1) return { ...base, action: 'older', seconds: seconds() };
        await rm(target, { force: true });
        return { ...base, action: 'removed', seconds: seconds() };
      }
      let movedFrom: string | undefined;
      const from = renamedFrom(message);
      if (from !== undefined) {
        const source = await localPathFor(this.options.dir, from);
        const [old, existing] = await Promise.all([stat(source).catch(() => undefined), stat(target).catch(() => undefined)]);
        if (old?.isFile() && !existing) {
          await rename(source, target);
          movedFrom = from;
        }
      }
      const local = await stat(target).catch(() => undefined);
      if (local && local.mtimeMs > announcedMs + 1) return { ...base, action: 'older', seconds: seconds(), ...(movedFrom ? { renamedFrom: movedFrom } : {}) };
      if (local && Math.abs(local.mtimeMs - announcedMs) <= 1 && local.size === message.size) {
        return { ...base, action: 'up-to-date', length: local.size, seconds: seconds(), ...(movedFrom ? { renamedFrom: movedFrom } : {}) };
      }
      const common = { target, engine: this.options.engine ?? 'auto', transport: this.options.transport } as const;
      let result: SyncOutcome;
      let fallback: string | undefined;
      let abandoned = false;
      const delta = message.zsync !== undefined && local !== undefined;
      try {
        result = await sync({ ...common, control: message });
      } catch (error) {
        // The signature did not lead to the announced file (a relay changed the data, a lying
        // signature...): a whole download still can, and is checked against identity.
        if (!delta || !isZpumpError(error) || !['E_VERIFY', 'E_BAD_CONTROL', 'E_BACKEND'].includes(error.code)) throw error;
        fallback = error.message;
        abandoned = true;
        this.options.log(`${message.relPath}: delta sync failed (${error.message}); downloading it whole`);
        result = await sync({ ...common, control: { ...message, zsync: undefined } });
      }
      if (result.fallback) fallback ??= `zsync: ${result.fallback.reason}`;
      return {
        ...base,
        action: delta && !abandoned ? 'delta' : 'whole',
        engine: result.engine,
        length: result.length,
        bytesReused: result.bytesReused,
        bytesFetched: result.bytesFetched,
        seconds: seconds(),
        ...(movedFrom ? { renamedFrom: movedFrom } : {}),
        ...(fallback ? { fallback } : {}),
      };
    });
  }
}

export function describeReport(r: ApplyReport, formatBytes: (n: number) => string): string {
  const extra = `${r.renamedFrom ? ` (renamed from ${r.renamedFrom})` : ''}${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}`;
  switch (r.action) {
    case 'removed':
      return `${r.relPath}: removed${extra}`;
    case 'superseded':
      return `${r.relPath}: skipped, a newer message for it came in`;
    case 'absent':
      return `${r.relPath}: removal announced, nothing to remove`;
    case 'older':
      return `${r.relPath}: skipped, what is in place is newer than this message${extra}`;
    case 'up-to-date':
      return `${r.relPath}: already up to date${extra}`;
    default:
      return `${r.relPath}: ${formatBytes(r.length ?? 0)} ${r.action === 'delta' ? 'synced' : 'downloaded whole'}, ${formatBytes(r.bytesReused ?? 0)} reused, ${formatBytes(r.bytesFetched ?? 0)} fetched (${r.engine} engine, ${r.seconds.toFixed(2)} s)${extra}${r.fallback ? `; ${r.fallback}` : ''}`;
  }
}
