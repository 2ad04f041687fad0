// MQTT v5 as Sarracenia's MQTT subscribers expect it: topic EXCHANGE/v03/<directories>, QoS 1,
// Content Type application/json. Subscribers keep a persistent session (clean: false and a
// session expiry), so the broker queues messages while they are away, and they send the PUBACK
// only once the message has been applied: a subscriber killed mid-transfer gets it again.

import { setTimeout as sleep } from 'node:timers/promises';
import { ZpumpError } from '../../errors.js';
import { renderAnnouncement, type Announcement } from '../../format/announcement.js';
import { redactUrl } from '../../transport/redact.js';
import { topicOf, type ConsumeOptions, type Delivery, type Sink, type Source } from './types.js';

/** How long the broker keeps a subscriber's session (and its queued messages) while it is away. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;
/** With --once: stop when nothing has arrived for this long. */
const ONCE_IDLE_MS = 1500;

export interface MqttOptions {
  url: string;
  exchange: string;
  maxAttempts?: number;
  log?: (line: string) => void;
}

export async function createMqttSink(options: MqttOptions): Promise<Sink> {
  const { default: mqtt } = await import('mqtt');
  // mqtt.js reconnects by itself and keeps unacknowledged QoS 1 messages to send again.
  const client = mqtt.connect(options.url, { protocolVersion: 5, reconnectPeriod: 1000, connectTimeout: 10_000, clean: true });
  client.on('error', (error) => options.log?.(`MQTT ${redactUrl(options.url)}: ${error.message}`));
  client.on('offline', () => options.log?.(`MQTT broker ${redactUrl(options.url)} went away; messages wait until it is back`));
  if ((options.maxAttempts ?? Infinity) < Infinity) {
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        client.end(true);
        reject(new ZpumpError('E_BUS', `cannot reach the MQTT broker at ${redactUrl(options.url)}: ${error.message}`, { cause: error }));
      };
      client.once('connect', () => resolve());
      client.once('error', fail);
      setTimeout(() => fail(new Error('no answer within 10 s')), 10_000).unref();
    });
  }
  return {
    where: `${redactUrl(options.url)} ${options.exchange}/v03/...`,
    async post(message: Announcement) {
      await client.publishAsync(topicOf(options.exchange, message.relPath), renderAnnouncement(message), { qos: 1, properties: { contentType: 'application/json' } });
    },
    async close() {
      await client.endAsync();
    },
  };
}

export interface MqttSourceOptions {
  url: string;
  exchange: string;
  /** The client id names the persistent session: one per subscriber tree. */
  clientId: string;
  /** Subscription below EXCHANGE/v03, e.g. # or model/# */
  subtopic: string;
}

export async function createMqttSource(options: MqttSourceOptions): Promise<Source> {
  const { default: mqtt } = await import('mqtt');
  return {
    where: `${redactUrl(options.url)} ${options.exchange}/v03/${options.subtopic} (session ${options.clientId})`,
    async consume(handle: (d: Delivery) => Promise<void>, consume: ConsumeOptions) {
      let lastActivity = Date.now();
      let busy = 0;
      let count = 0;
      // mqtt.js hands over one publish at a time and sends the PUBACK when `done` is called:
      // messages are applied in order, and one not yet applied is never acknowledged.
      const client = mqtt.connect(options.url, {
        protocolVersion: 5,
        clientId: options.clientId,
        clean: false,
        properties: { sessionExpiryInterval: SESSION_EXPIRY_S },
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        customHandleAcks: (_topic, message, _packet, done) => {
          busy++;
          lastActivity = Date.now();
          const ack = async () => done(0);
          handle({ body: new Uint8Array(message), id: `mqtt#${++count}`, ack, setAside: async () => done(0) })
            .catch((error: unknown) => consume.log(`MQTT delivery failed: ${error instanceof Error ? error.message : String(error)}`))
            .finally(() => {
              busy--;
              lastActivity = Date.now();
            });
        },
      });
      client.on('error', (error) => consume.log(`MQTT ${redactUrl(options.url)}: ${error.message}`));
      client.on('offline', () => consume.log(`lost the MQTT broker at ${redactUrl(options.url)}; reconnecting`));
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ZpumpError('E_BUS', `cannot reach the MQTT broker at ${redactUrl(options.url)}: no answer within 30 s`)), 30_000);
          client.once('connect', () => {
            clearTimeout(timer);
            resolve();
          });
          consume.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        if (consume.signal.aborted) return;
        await client.subscribeAsync(`${options.exchange}/v03/${options.subtopic}`, { qos: 1 });
        consume.onReady?.();
        lastActivity = Date.now();
        for (;;) {
          await sleep(200, undefined, { signal: consume.signal }).catch(() => undefined);
          if (consume.signal.aborted) return;
          if (consume.once && busy === 0 && Date.now() - lastActivity > ONCE_IDLE_MS) return;
        }
      } finally {
        // Work still in hand is dropped unacknowledged: the broker sends it again next time.
        await client.endAsync(busy > 0).catch(() => undefined);
      }
    },
  };
}
