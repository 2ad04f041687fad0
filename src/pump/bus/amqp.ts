// RabbitMQ (AMQP 0-9-1) as Sarracenia uses it: a durable topic exchange (xpublic), routing key
// v03.<directories>, persistent JSON messages with publisher confirms. Subscribers share a
// durable queue bound with a topic pattern and ack a message only once it has been applied.
// Both sides reconnect on their own; a sink keeps messages until the broker confirms them.

import type { Message } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZpumpError } from '../../errors.js';
import { redactUrl } from '../../transport/redact.js';
import { backoffMs } from '../backoff.js';
import { renderAnnouncement, type Announcement } from '../../format/announcement.js';
import { AMQP_KEY_MAX_BYTES, amqpRoutingKey } from './topic.js';
import type { ConsumeOptions, Delivery, Sink, Source } from './types.js';

export interface AmqpOptions {
  url: string;
  exchange: string;
  /** Give up posting after this many failed connection attempts (watch: never). */
  maxAttempts?: number;
  log?: (line: string) => void;
}

type Amqplib = typeof import('amqplib');
type Connection = Awaited<ReturnType<Amqplib['connect']>>;
type ConfirmChannel = Awaited<ReturnType<Connection['createConfirmChannel']>>;

/** A broker that neither answers nor refuses (a dropped SYN) must not hold a command forever. */
const CONNECT_TIMEOUT_MS = 10_000;

function asBusError(error: unknown, url: string): ZpumpError {
  const why = error instanceof Error ? error.message : String(error);
  return new ZpumpError('E_BUS', `cannot reach the broker at ${redactUrl(url)}: ${why}`, { cause: error, data: { connectivity: true } });
}

/** Connects, unless `signal` aborts first (then a connection made later is closed at once). */
async function connectUnlessAborted(connect: Amqplib['connect'], url: string, signal: AbortSignal): Promise<Connection | undefined> {
  if (signal.aborted) return undefined;
  const connecting = connect(url, { timeout: CONNECT_TIMEOUT_MS });
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const conn = await Promise.race([connecting, aborted]);
    if (conn === undefined) void connecting.then((late) => late.close()).catch(() => undefined);
    return conn;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The broker refused this message (not a connection problem): a soft channel error such as
 *  406 PRECONDITION_FAILED for a message over its max size, or a frame that cannot be encoded.
 *  Trying again cannot help, so the message fails at once. */
class Refusal extends Error {}

/** AMQP soft errors (403 access refused, 404 not found, 405 resource locked, 406 precondition
 *  failed) and a refused login: the broker's answer, not a connection problem. */
function isRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'number' && code >= 403 && code <= 406) return true;
  return error instanceof Error && /\b(ACCESS|NOT|RESOURCE|PRECONDITION)[-_](REFUSED|FOUND|LOCKED|FAILED)\b/.test(error.message);
}

function refusedLink(error: unknown, url: string): ZpumpError {
  return new ZpumpError('E_BUS', `the broker at ${redactUrl(url)} refused the connection or the exchange: ${error instanceof Error ? error.message : String(error)}`, { cause: error, data: { refused: true } });
}

interface Link {
  conn: Connection;
  ch: ConfirmChannel;
  /** Why the broker closed the channel, when it did (AMQP reply code and text). */
  channelError?: Error & { code?: number };
}

export async function createAmqpSink(options: AmqpOptions): Promise<Sink> {
  const { connect } = await import('amqplib');
  const log = options.log ?? (() => undefined);
  const maxAttempts = options.maxAttempts ?? Infinity;
  // close() ends every wait and every connection, including one still being opened.
  const closing = new AbortController();
  const connections = new Set<Connection>();
  let link: Promise<Link> | undefined;

  const discard = async (l: Link): Promise<void> => {
    connections.delete(l.conn);
    await l.conn.close().catch(() => undefined);
  };
  const open = (): Promise<Link> => {
    const opening: Promise<Link> = (link ??= (async () => {
      const conn = await connectUnlessAborted(connect, options.url, closing.signal);
      if (!conn) throw new ZpumpError('E_BUS', `posting to ${redactUrl(options.url)} was stopped`);
      connections.add(conn);
      const forget = () => {
        if (link === opening) link = undefined;
      };
      conn.on('error', () => undefined); // 'close' follows; the next post reconnects
      conn.on('close', () => {
        connections.delete(conn);
        forget();
      });
      try {
        const ch = await conn.createConfirmChannel();
        const l: Link = { conn, ch };
        ch.on('error', (error: Error & { code?: number }) => (l.channelError = error));
        ch.on('close', forget);
        await ch.assertExchange(options.exchange, 'topic', { durable: true });
        return l;
      } catch (error) {
        connections.delete(conn);
        await conn.close().catch(() => undefined);
        throw error;
      }
    })().catch((error: unknown) => {
      if (link === opening) link = undefined;
      throw error;
    }));
    return opening;
  };
  const publish = (l: Link, key: string, body: Buffer): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      try {
        l.ch.publish(options.exchange, key, body, { persistent: true, contentType: 'application/json', contentEncoding: 'utf-8' }, (error: unknown) =>
          error ? reject(error instanceof Error ? error : new Error('the broker did not confirm the message')) : resolve(),
        );
      } catch (error) {
        // Thrown before anything was sent: a closed channel is a connection matter, anything
        // else (a field the encoder refuses) is this message's.
        if (error instanceof Error && error.name === 'IllegalOperationError') reject(error);
        else reject(new Refusal(error instanceof Error ? error.message : String(error)));
      }
    });

  await open().catch((error: unknown) => {
    if (isRefusal(error)) throw refusedLink(error, options.url);
    if (maxAttempts <= 1) throw asBusError(error, options.url);
    log(`broker ${redactUrl(options.url)} not reachable yet (${error instanceof Error ? error.message : String(error)}); retrying`);
  });
  return {
    where: `${redactUrl(options.url)} exchange ${options.exchange}`,
    async post(message: Announcement) {
      const body = Buffer.from(renderAnnouncement(message));
      const { key, truncated } = amqpRoutingKey(message.relPath);
      if (truncated) log(`${message.relPath}: routing key longer than ${AMQP_KEY_MAX_BYTES} bytes, truncated to ${key} (as sr3 does)`);
      for (let attempt = 0; ; attempt++) {
        let l: Link | undefined;
        try {
          l = await open();
          await publish(l, key, body);
          return;
        } catch (error) {
          // A link that failed a post is not trusted again: closing it here is what keeps
          // failed attempts from leaving connections open.
          if (l) await discard(l);
          const soft = l?.channelError?.code;
          if (error instanceof Refusal || (soft !== undefined && soft >= 400 && soft < 500)) {
            const why = soft !== undefined ? l!.channelError!.message : (error as Error).message;
            throw new ZpumpError('E_BUS', `the broker at ${redactUrl(options.url)} refused ${message.relPath}: ${why}`, { cause: error, data: { refused: true } });
          }
          if (!l && isRefusal(error)) throw refusedLink(error, options.url);
          if (closing.signal.aborted) throw new ZpumpError('E_BUS', `not posted to ${redactUrl(options.url)}: stopping before the broker could be reached`, { cause: error });
          if (attempt + 1 >= maxAttempts) throw asBusError(error, options.url);
          log(`posting ${message.relPath} to ${redactUrl(options.url)} failed (${error instanceof Error ? error.message : String(error)}); retrying`);
          await sleep(backoffMs(attempt), undefined, { signal: closing.signal }).catch(() => undefined);
        }
      }
    },
    async close() {
      closing.abort();
      link = undefined;
      await Promise.all([...connections].map((conn) => conn.close().catch(() => undefined)));
      connections.clear();
    },
  };
}

export interface AmqpSourceOptions {
  url: string;
  exchange: string;
  queue: string;
  /** Topic pattern for the binding, e.g. v03.# (everything) or v03.model.# */
  binding: string;
}

export async function createAmqpSource(options: AmqpSourceOptions): Promise<Source> {
  const { connect } = await import('amqplib');
  return {
    where: `${redactUrl(options.url)} queue ${options.queue}`,
    async consume(handle: (d: Delivery) => Promise<void>, consume: ConsumeOptions) {
      for (let attempt = 0; !consume.signal.aborted; attempt++) {
        let conn: Connection | undefined;
        try {
          conn = await connectUnlessAborted(connect, options.url, consume.signal);
          if (!conn) return;
          const closed = new Promise<void>((resolve) => conn!.once('close', () => resolve()));
          conn.on('error', (error: unknown) => consume.log(`broker connection error: ${error instanceof Error ? error.message : String(error)}`));
          const ch = await conn.createChannel();
          ch.on('error', () => undefined);
          await ch.assertExchange(options.exchange, 'topic', { durable: true });
          await ch.assertQueue(options.queue, { durable: true });
          await ch.bindQueue(options.queue, options.exchange, options.binding);
          await ch.prefetch(consume.prefetch);
          attempt = 0;
          const deliver = (msg: Message): Promise<void> => {
            const settle = (fn: () => void) => {
              try {
                fn();
              } catch {
                // The channel went away: the broker will redeliver this message to someone.
              }
            };
            return handle({
              body: new Uint8Array(msg.content),
              id: `${options.queue}#${msg.fields.deliveryTag}${msg.fields.redelivered ? ' (redelivered)' : ''}`,
              ack: async () => settle(() => ch.ack(msg)),
              // Set aside by the subscriber (its rejected folder); the broker can drop it.
              setAside: async () => settle(() => ch.ack(msg)),
            });
          };
          if (consume.once) {
            consume.onReady?.();
            // Pull until the queue is empty, with up to `prefetch` messages in hand as when consuming.
            const inHand = new Set<Promise<void>>();
            for (;;) {
              if (consume.signal.aborted) {
                await Promise.all(inHand);
                break;
              }
              if (inHand.size >= consume.prefetch) {
                await Promise.race(inHand);
                continue;
              }
              const msg = await ch.get(options.queue, { noAck: false });
              if (msg === false) {
                if (inHand.size === 0) break;
                await Promise.race(inHand);
                continue;
              }
              const p: Promise<void> = deliver(msg).finally(() => inHand.delete(p));
              inHand.add(p);
            }
            await conn.close().catch(() => undefined);
            return;
          }
          const inFlight = new Set<Promise<void>>();
          await ch.consume(options.queue, (msg) => {
            if (!msg) return; // the queue was deleted; the close below ends this round
            const p = deliver(msg).finally(() => inFlight.delete(p));
            inFlight.add(p);
          }, { noAck: false });
          consume.onReady?.();
          const aborted = new Promise<void>((resolve) => consume.signal.addEventListener('abort', () => resolve(), { once: true }));
          await Promise.race([closed, aborted]);
          if (consume.signal.aborted) {
            await conn.close().catch(() => undefined);
            return;
          }
          consume.log(`lost the broker at ${redactUrl(options.url)}; reconnecting`);
        } catch (error) {
          await conn?.close().catch(() => undefined);
          if (consume.signal.aborted) return;
          // A refusal (credentials, permissions, a queue declared otherwise) is the same on every
          // attempt: say it and stop rather than retry for ever.
          if (isRefusal(error)) throw new ZpumpError('E_BUS', `the broker at ${redactUrl(options.url)} refused queue ${options.queue}: ${(error as Error).message}`, { cause: error, data: { refused: true } });
          if (consume.once && attempt >= 4) throw asBusError(error, options.url);
          consume.log(`broker ${redactUrl(options.url)}: ${error instanceof Error ? error.message : String(error)}; retrying`);
        }
        await sleep(backoffMs(attempt), undefined, { signal: consume.signal }).catch(() => undefined);
      }
    },
  };
}
