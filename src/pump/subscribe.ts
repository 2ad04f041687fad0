// The subscriber: takes deliveries from a bus and applies each announcement to the local tree.
// Order of checks: parse (size limit, JSON, fields) → message checks (schemes, relPath,
// signature vs size) → local path inside --dir → per-file lock → newer-wins → sync (delta when
// there is a signature and a local copy, whole otherwise) → verify → rename → ack.
// Refusals are final (set aside at once); transfer failures are retried with backoff, then set
// aside too, so one poison message never blocks the queue. Every wait (lock, backoff) ends when
// the subscriber is stopped (SIGTERM) or a newer message for the same file comes in; a stopped
// message is neither acked nor set aside, so the bus hands it out again next time.

import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sync, type SyncOutcome } from '../api.js';
import type { EngineChoice } from '../backends/types.js';
import { isZpumpError, type ErrorCode } from '../errors.js';
import { DEFAULT_MESSAGE_LIMIT, checkableIdentity, parseAnnouncement, parseV03Time, v03Time, type Announcement } from '../format/announcement.js';
import { writeFileAtomically } from '../local/atomic-file.js';
import { dropSignature } from '../local/signature-cache.js';
import { syncReusingSignature } from './signature-reuse.js';
import { verifyIdentity } from '../local/identity-check.js';
import { withFileLock } from '../local/lock-file.js';
import type { OpenOptions } from '../transport/open.js';
import type { ConsumeOptions, Delivery, Source } from './bus/types.js';
import { DEFAULT_SCHEMES, checkMessage, isRemove, localPathFor, makeParents, recheckLocalPath, renameSourceOf, renamedFrom } from './message.js';

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
  /** Take files whose identity zpump cannot check (method none or unknown) unchecked. */
  acceptUnverified?: boolean;
  /** Stops every wait (lock, backoff) and the consumption itself: SIGTERM/SIGINT in the command. */
  signal?: AbortSignal;
  /** How long to wait for another writer's lock on a file (default 30 min). */
  lockTimeoutMs?: number;
  /** sr3 renames name the publisher's absolute path: this prefix of it is the top of --dir. */
  renameStrip?: string;
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

/** Times further ahead than this are taken as "now" for ordering (a clock or a message gone wrong). */
export const FUTURE_SLACK_MS = 24 * 3600_000;

/**
 * Control characters in message fields (a relPath with a newline...) escaped JSON-style, so no
 * field can start a line of its own in the log and pass for zpump's own output.
 */
export function logSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  // Bidi controls too (U+202A-U+202E, U+2066-U+2069): they reorder what a terminal shows.
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => JSON.stringify(c).slice(1, -1).replace(/^[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]$/, (u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** The subscriber was stopped while this message was in hand: not applied, not refused. */
class Stopped extends Error {}

/** Refusals: the message is wrong, trying again cannot help. */
const FINAL: ReadonlySet<ErrorCode> = new Set(['E_BAD_MESSAGE', 'E_UNSAFE_PATH', 'E_USAGE', 'E_UNSUPPORTED', 'E_BAD_INPUT', 'E_BAD_CONTROL']);

export class Subscriber {
  private readonly chains = new Map<string, Promise<unknown>>();
  /** The latest arrival per file, and how to cut short the waits of the one before it. */
  private readonly latest = new Map<string, { arrival: number; superseded: AbortController }>();
  private arrivals = 0;
  /** Messages are admitted (checked, then queued per file) one at a time, in arrival order. */
  private admission: Promise<void> = Promise.resolve();
  applied = 0;
  setAside = 0;
  /** Messages left to the bus because the subscriber was stopped while they were in hand. */
  leftForLater = 0;

  constructor(private readonly options: SubscriberOptions) {}

  private log(line: string): void {
    this.options.log(logSafe(line));
  }

  /** Consume `source` until it ends (once) or `signal` aborts. */
  async run(source: Source, consume: Omit<ConsumeOptions, 'log'>): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    const refused = (id: string, reason: string): void => {
      this.setAside++;
      this.log(`refused ${id}: ${reason}`);
    };
    const signal = this.options.signal && consume.signal !== this.options.signal ? AbortSignal.any([this.options.signal, consume.signal]) : consume.signal;
    await source.consume((delivery) => this.take(delivery, source.keepsRejected === true), { messageLimit: this.options.messageLimit ?? DEFAULT_MESSAGE_LIMIT, refused, ...consume, signal, log: (line) => this.log(line) });
  }

  /** Apply one delivery, then ack it or set it aside; never throws. */
  async take(delivery: Delivery, busKeepsRejected: boolean): Promise<void> {
    try {
      const report = await this.applyBody(delivery.body, delivery.id);
      this.applied++;
      this.options.report(report);
      await delivery.ack();
    } catch (error) {
      if (error instanceof Stopped || this.options.signal?.aborted) {
        // Neither applied nor wrong: the bus keeps it (spool file stays, AMQP redelivers).
        this.leftForLater++;
        this.log(`stopped: ${delivery.id} left for the next run`);
        return;
      }
      const reason = error instanceof Error ? error.message : String(error);
      this.setAside++;
      this.log(`refused ${delivery.id}: ${reason}`);
      try {
        if (!busKeepsRejected) await this.keepRejected(delivery, reason);
        await delivery.setAside(reason);
      } catch (keepError) {
        this.log(`could not set ${delivery.id} aside: ${keepError instanceof Error ? keepError.message : String(keepError)}`);
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
    // Admitted in arrival order, so that the per-file queues are joined in that order even when
    // resolving paths takes longer for one message than for the next: a rename touches two files,
    // and the removal of its old name that follows must wait for it.
    const turn = this.admission;
    let admitted!: () => void;
    this.admission = new Promise((resolve) => (admitted = resolve));
    let target: string;
    let mine: { arrival: number; superseded: AbortController };
    let applying: Promise<ApplyReport>;
    try {
      await turn;
      const message = parseAnnouncement(body, this.options.messageLimit ?? DEFAULT_MESSAGE_LIMIT);
      checkMessage(message, { schemes: this.options.schemes ?? DEFAULT_SCHEMES, acceptUnverified: this.options.acceptUnverified });
      target = await localPathFor(this.options.dir, message.relPath);
      const oldName = renamedFrom(message) === undefined ? undefined : await this.renameSource(message, true);
      mine = { arrival, superseded: new AbortController() };
      const before = this.latest.get(target);
      if ((before?.arrival ?? 0) < arrival) {
        // A newer message wins: the older one stops waiting (backoff, lock) and reports superseded.
        before?.superseded.abort();
        this.latest.set(target, mine);
      } else {
        mine.superseded.abort();
      }
      const work = { message, target, mine };
      applying = this.serialized([target, ...(oldName ? [oldName.path] : [])], () => this.withRetries(work.message, work.target, id, work.mine));
    } finally {
      admitted();
    }
    try {
      return await applying;
    } finally {
      if (this.latest.get(target) === mine) this.latest.delete(target);
    }
  }

  /** Messages for one file (a rename: for both its names) are applied one after the other, in the order they arrived. */
  private async serialized<T>(keys: string[], work: () => Promise<T>): Promise<T> {
    const before = Promise.all(keys.map((key) => (this.chains.get(key) ?? Promise.resolve()).catch(() => undefined)));
    const mine = before.then(work);
    for (const key of keys) this.chains.set(key, mine);
    try {
      return await mine;
    } finally {
      for (const key of keys) if (this.chains.get(key) === mine) this.chains.delete(key);
    }
  }

  private async withRetries(message: Announcement, target: string, id: string, mine: { arrival: number; superseded: AbortController }): Promise<ApplyReport> {
    const retries = this.options.retries ?? 3;
    const stop = this.options.signal;
    const waits = stop ? AbortSignal.any([stop, mine.superseded.signal]) : mine.superseded.signal;
    const superseded = (attempts: number): ApplyReport => ({ id, relPath: message.relPath, action: 'superseded', seconds: 0, attempts });
    for (let attempt = 1; ; attempt++) {
      if (stop?.aborted) throw new Stopped();
      // A newer message for this file arrived meanwhile: it wins, this one has nothing left to do.
      if (mine.superseded.signal.aborted) return superseded(attempt - 1);
      try {
        return { ...(await this.apply(message, target, id, waits)), attempts: attempt };
      } catch (error) {
        if (stop?.aborted) throw new Stopped();
        if (mine.superseded.signal.aborted && !isZpumpError(error)) return superseded(attempt); // its lock wait was cut short
        const final = isZpumpError(error) && FINAL.has(error.code);
        if (final || attempt > retries) {
          if (!final && error instanceof Error) error.message = `${message.relPath}: failed ${attempt} times, last: ${error.message}`;
          throw error;
        }
        const delay = (this.options.retryDelayMs ?? 1000) * 2 ** (attempt - 1);
        this.log(`${message.relPath}: attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay, undefined, { signal: waits }).catch(() => undefined);
      }
    }
  }

  /** When the message says the file was written, for ordering: a time far in the future counts as now. */
  private orderingTime(message: Announcement): { ms: number; clamped: boolean } {
    const ms = parseV03Time(message.mtime ?? message.pubTime) ?? 0;
    const now = Date.now();
    if (ms <= now + FUTURE_SLACK_MS) return { ms, clamped: false };
    this.log(`${message.relPath}: its ${message.mtime !== undefined ? 'mtime' : 'pubTime'} ${message.mtime ?? message.pubTime} is more than a day ahead; taken as now`);
    return { ms: now, clamped: true };
  }

  /**
   * Where the local copy of a renamed file is, when the old name maps safely inside --dir; else
   * undefined and a warning: the new name is fetched and whatever the old name is stays.
   */
  private async renameSource(message: Announcement, quiet = false): Promise<{ relPath: string; path: string } | undefined> {
    const old = renamedFrom(message);
    if (old === undefined) return undefined;
    const mapped = renameSourceOf(message, this.options.renameStrip);
    const skip = (why: string) => {
      if (!quiet) this.log(`${message.relPath}: the rename's old name does not map inside --dir (${why}); fetching the new name, any old copy stays`);
      return undefined;
    };
    if ('why' in mapped) return skip(mapped.why);
    try {
      return { relPath: mapped.relPath, path: await localPathFor(this.options.dir, mapped.relPath) };
    } catch (error) {
      return skip(error instanceof Error ? error.message : String(error));
    }
  }

  private async apply(message: Announcement, target: string, id: string, waits: AbortSignal): Promise<Omit<ApplyReport, 'attempts'>> {
    const started = performance.now();
    const base = { id, relPath: message.relPath };
    const seconds = (): number => Math.round(performance.now() - started) / 1000;
    const dir = this.options.dir;
    // The tree may have changed since the path was resolved (a folder swapped for a link between retries).
    await recheckLocalPath(dir, target);
    // A removal of something never received must not leave empty folders behind.
    if (isRemove(message) && !(await stat(dirname(target)).catch(() => undefined))) return { ...base, action: 'absent', seconds: seconds() };
    await makeParents(target);
    await recheckLocalPath(dir, target);
    const lockTimeout = this.options.lockTimeoutMs ?? 30 * 60_000;
    return withFileLock(target, async () => {
      const { ms: announcedMs, clamped } = this.orderingTime(message);
      const now = Date.now();
      // A local mtime far ahead (left by an older zpump or a bad clock) must not freeze the file
      // either: it says nothing about order, so any message wins over it. ("now" would not do: a
      // real update's mtime is always before now, so it would still lose.)
      const localMs = (mtimeMs: number): number => (mtimeMs > now + FUTURE_SLACK_MS ? -Infinity : mtimeMs);
      if (isRemove(message)) {
        const local = await stat(target).catch(() => undefined);
        if (!local) return { ...base, action: 'absent', seconds: seconds() };
        // A file written after the removal was announced is a newer version: keep it. A pubTime
        // that does not parse (refused earlier anyway) keeps the file too.
        if (localMs(local.mtimeMs) > (parseV03Time(message.pubTime) ?? -Infinity) + 1) return { ...base, action: 'older', seconds: seconds() };
        await recheckLocalPath(dir, target);
        await rm(target, { force: true });
        await dropSignature(dir, message.relPath); // the kept signature of what is gone (signature-reuse)
        return { ...base, action: 'removed', seconds: seconds() };
      }
      const identity = checkableIdentity(message.identity, this.options.acceptUnverified);
      let movedFrom: string | undefined;
      let seeds: string[] = [];
      const from = await this.renameSource(message);
      if (from !== undefined) {
        const source = from.path;
        const [old, existing] = await Promise.all([stat(source).catch(() => undefined), stat(target).catch(() => undefined)]);
        if (old?.isFile() && !existing) {
          // The move applies only when it gives the announced content; otherwise the old file is
          // a seed for fetching the new one, and goes once that is in place.
          const matches = identity !== undefined && old.size === message.size && (await verifyIdentity(source, identity, target).then(() => true, () => false));
          if (matches) {
            await recheckLocalPath(dir, source);
            await recheckLocalPath(dir, target);
            await rename(source, target);
            movedFrom = from.relPath;
            return { ...base, action: 'up-to-date', length: old.size, seconds: seconds(), renamedFrom: movedFrom };
          }
          seeds = [source];
          movedFrom = from.relPath;
        }
      }
      const local = seeds.length > 0 ? undefined : await stat(target).catch(() => undefined);
      if (local && localMs(local.mtimeMs) > announcedMs + 1) return { ...base, action: 'older', seconds: seconds() };
      if (local && !clamped && Math.abs(local.mtimeMs - announcedMs) <= 1 && local.size === message.size) {
        return { ...base, action: 'up-to-date', length: local.size, seconds: seconds() };
      }
      // The file gets the time it was ordered by: the clamped one, not the far-future one, and
      // without an mtime the pubTime, never the signature's MTime header (unchecked, it could be
      // year 9999 and make every later real update "older"). A later real update must still win.
      const applied = clamped || message.mtime === undefined ? { ...message, mtime: v03Time(announcedMs) } : message;
      const common = {
        target, seeds, engine: this.options.engine ?? 'auto', transport: this.options.transport,
        schemes: this.options.schemes ?? DEFAULT_SCHEMES, acceptUnverified: this.options.acceptUnverified,
        beforeCommit: () => recheckLocalPath(dir, target),
      } as const;
      let result: SyncOutcome;
      let fallback: string | undefined;
      let abandoned = false;
      const delta = message.zsync !== undefined && (local !== undefined || seeds.length > 0);
      try {
        // The signature of the version in place, kept when it was applied, spares the scan of it.
        result = await syncReusingSignature({ ...common, control: applied }, { dir, relPath: message.relPath }, (line) => this.log(line));
      } catch (error) {
        // The signature did not lead to the announced file (a relay changed the data, a lying
        // signature...): a whole download still can, and is checked against identity.
        if (!delta || !isZpumpError(error) || !['E_VERIFY', 'E_BAD_CONTROL', 'E_BACKEND'].includes(error.code)) throw error;
        fallback = error.message;
        abandoned = true;
        this.log(`${message.relPath}: delta sync failed (${error.message}); downloading it whole`);
        result = await sync({ ...common, seeds: [], control: { ...applied, zsync: undefined } });
      }
      if (movedFrom !== undefined && seeds.length > 0) {
        // The rename happened at the source: the old name goes once the new content is in place.
        await recheckLocalPath(dir, seeds[0]!).then(() => rm(seeds[0]!, { force: true })).catch(() => undefined);
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
    }, lockTimeout, waits);
  }
}

export function describeReport(r: ApplyReport, formatBytes: (n: number) => string): string {
  const path = logSafe(r.relPath);
  const extra = `${r.renamedFrom ? ` (renamed from ${logSafe(r.renamedFrom)})` : ''}${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}`;
  switch (r.action) {
    case 'removed':
      return `${path}: removed${extra}`;
    case 'superseded':
      return `${path}: skipped, a newer message for it came in`;
    case 'absent':
      return `${path}: removal announced, nothing to remove`;
    case 'older':
      return `${path}: skipped, what is in place is newer than this message${extra}`;
    case 'up-to-date':
      return `${path}: already up to date${extra}`;
    default:
      return `${path}: ${formatBytes(r.length ?? 0)} ${r.action === 'delta' ? 'synced' : 'downloaded whole'}, ${formatBytes(r.bytesReused ?? 0)} reused, ${formatBytes(r.bytesFetched ?? 0)} fetched (${r.engine} engine, ${r.seconds.toFixed(2)} s)${extra}${r.fallback ? `; ${logSafe(r.fallback)}` : ''}`;
  }
}
