// One interface for every bus: a Sink takes announcements from `announce`/`watch`, a Source hands
// them to `subscribe` one delivery at a time and learns, per delivery, whether it was applied
// (ack) or refused for good (setAside). What "ack" means is the bus's business: removing a spool
// file, a basic.ack, an MQTT PUBACK.

import type { Announcement } from '../../format/announcement.js';

export interface Sink {
  /** For log lines: where messages go (credentials stripped). */
  readonly where: string;
  /** Resolves once the bus has the message for good (fsync'd file, publisher confirm, PUBACK). */
  post(message: Announcement): Promise<void>;
  close(): Promise<void>;
}

export interface Delivery {
  /** The raw message body, not yet parsed (parsing is the subscriber's job: it may fail). */
  readonly body: Uint8Array;
  /** For log lines: a spool file name, a delivery tag... */
  readonly id: string;
  /** The message was applied: the bus may forget it. */
  ack(): Promise<void>;
  /** The message is refused for good: keep it aside with the reason, and let the bus forget it. */
  setAside(reason: string): Promise<void>;
}

export interface ConsumeOptions {
  /** Apply what is queued now, then resolve. */
  once: boolean;
  /** How many deliveries may be in hand at once (the subscriber orders those of one file itself). */
  prefetch: number;
  /** Ends every wait of the bus (reconnect backoff, consume): SIGTERM/SIGINT stop a subscriber promptly. */
  signal: AbortSignal;
  /** Bodies larger than this are refused before they are read (spool: checked with fstat). */
  messageLimit?: number;
  /** The bus refused an entry itself, before delivering it (spool: a FIFO, a symlink, too large). */
  refused?: (id: string, reason: string) => void;
  /** Connection trouble and other things an operator wants to see. */
  log: (line: string) => void;
  /** Called each time the source is subscribed and waiting (again, after a reconnection). */
  onReady?: () => void;
}

export interface Source {
  readonly where: string;
  /** The bus keeps refused messages itself (spool: rejected/); others get the subscriber's folder. */
  readonly keepsRejected?: boolean;
  /** Call `handle` for each message until `signal` aborts (or, with once, the queue is empty). */
  consume(handle: (delivery: Delivery) => Promise<void>, options: ConsumeOptions): Promise<void>;
}

// Kept here for callers that import them with the interface; topic.ts holds the rules.
export { routingKeyOf, topicOf } from './topic.js';
