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
import { routingKeyOf, type ConsumeOptions, type Delivery, type Sink, type Source } from './types.js';

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

function asBusError(error: unknown, url: string): ZpumpError {
  const why = error instanceof Error ? error.message : String(error);
  return new ZpumpError('E_BUS', `cannot reach the broker at ${redactUrl(url)}: ${why}`, { cause: error });
}

export async function createAmqpSink(options: AmqpOptions): Promise<Sink> {
  const { connect } = await import('amqplib');
  let connection: Connection | undefined;
  let channel: Promise<ConfirmChannel> | undefined;
  const open = (): Promise<ConfirmChannel> => {
    channel ??= (async () => {
      const conn = await connect(options.url);
      const drop = () => {
        if (connection === conn) {
          connection = undefined;
          channel = undefined;
        }
      };
      conn.on('error', drop);
      conn.on('close', drop);
      connection = conn;
      const ch = await conn.createConfirmChannel();
      ch.on('error', drop);
      ch.on('close', drop);
      await ch.assertExchange(options.exchange, 'topic', { durable: true });
      return ch;
    })().catch((error: unknown) => {
      channel = undefined;
      throw error;
    });
    return channel;
  };
  await open().catch((error: unknown) => {
    if ((options.maxAttempts ?? Infinity) <= 1) throw asBusError(error, options.url);
    options.log?.(`broker ${redactUrl(options.url)} not reachable yet (${error instanceof Error ? error.message : String(error)}); retrying`);
  });
  return {
    where: `${redactUrl(options.url)} exchange ${options.exchange}`,
    async post(message: Announcement) {
      const body = Buffer.from(renderAnnouncement(message));
      for (let attempt = 0; ; attempt++) {
        try {
          const ch = await open();
          await new Promise<void>((resolve, reject) => {
            ch.publish(options.exchange, routingKeyOf(message.relPath), body, { persistent: true, contentType: 'application/json', contentEncoding: 'utf-8' }, (error: unknown) => (error ? reject(error instanceof Error ? error : new Error('the broker refused the message')) : resolve()));
          });
          return;
        } catch (error) {
          channel = undefined;
          if (attempt + 1 >= (options.maxAttempts ?? Infinity)) throw asBusError(error, options.url);
          options.log?.(`posting ${message.relPath} to ${redactUrl(options.url)} failed (${error instanceof Error ? error.message : String(error)}); retrying`);
          await sleep(backoffMs(attempt));
        }
      }
    },
    async close() {
      const conn = connection;
      connection = undefined;
      channel = undefined;
      await conn?.close().catch(() => undefined);
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
          conn = await connect(options.url);
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
            await conn.close();
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
          if (consume.once && attempt >= 4) throw asBusError(error, options.url);
          consume.log(`broker ${redactUrl(options.url)}: ${error instanceof Error ? error.message : String(error)}; retrying`);
        }
        await sleep(backoffMs(attempt), undefined, { signal: consume.signal }).catch(() => undefined);
      }
    },
  };
}
