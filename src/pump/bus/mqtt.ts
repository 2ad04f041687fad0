// MQTT v5 as Sarracenia's MQTT subscribers expect it: topic EXCHANGE/v03/<directories>, QoS 1,
// Content Type application/json. Subscribers keep a persistent session (clean: false and a
// session expiry), so the broker queues messages while they are away, and they send the PUBACK
// only once the message has been applied: a subscriber killed mid-transfer gets it again.

import { setTimeout as sleep } from 'node:timers/promises';
import { ZpumpError } from '../../errors.js';
import { renderAnnouncement, type Announcement } from '../../format/announcement.js';
import { redactUrl } from '../../transport/redact.js';
import { mqttFilterOf, topicOf } from './topic.js';
import type { ConsumeOptions, Delivery, Sink, Source } from './types.js';

/** How long the broker keeps a subscriber's session (and its queued messages) while it is away. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;
/** announce (a bounded number of attempts) gives up on a post the broker has not acknowledged by then. */
const POST_TIMEOUT_MS = 30_000;
/** With --once: stop when nothing has arrived for this long. */
const ONCE_IDLE_MS = 1500;

export interface MqttOptions {
  url: string;
  exchange: string;
  /** Post every message on this topic instead of EXCHANGE/v03/<folders> (WIS2 topics). */
  topic?: string;
  maxAttempts?: number;
  log?: (line: string) => void;
}

const CONTENT_TYPE = 'application/json';

/** Bytes of an MQTT 5 QoS 1 PUBLISH with a Content Type property: fixed header, topic, packet
 *  id, properties, payload. */
function publishPacketSize(topic: string, payloadBytes: number): number {
  const properties = 1 + 2 + Buffer.byteLength(CONTENT_TYPE);
  const remaining = 2 + Buffer.byteLength(topic) + 2 + varIntBytes(properties) + properties + payloadBytes;
  return 1 + varIntBytes(remaining) + remaining;
}

function varIntBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

export async function createMqttSink(options: MqttOptions): Promise<Sink> {
  const { default: mqtt } = await import('mqtt');
  // mqtt.js reconnects by itself and keeps unacknowledged QoS 1 messages to send again.
  const client = mqtt.connect(options.url, { protocolVersion: 5, reconnectPeriod: 1000, connectTimeout: 10_000, clean: true });
  client.on('error', (error) => options.log?.(`MQTT ${redactUrl(options.url)}: ${error.message}`));
  client.on('offline', () => options.log?.(`MQTT broker ${redactUrl(options.url)} went away; messages wait until it is back`));
  // A broker drops the connection on a PUBLISH over its Maximum Packet Size, and mqtt.js would
  // send it again after every reconnection: such a message is refused here instead.
  let maxPacket: number | undefined;
  client.on('connect', (connack) => (maxPacket = connack.properties?.maximumPacketSize));
  if ((options.maxAttempts ?? Infinity) < Infinity) {
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', settle);
        if (!error) return resolve();
        client.end(true);
        reject(new ZpumpError('E_BUS', `cannot reach the MQTT broker at ${redactUrl(options.url)}: ${error.message}`, { cause: error, data: { connectivity: true } }));
      };
      const onConnect = () => settle();
      const timer = setTimeout(() => settle(new Error('no answer within 10 s')), 10_000);
      client.once('connect', onConnect);
      client.once('error', settle);
    });
  }
  // close() ends a post still waiting for its PUBACK (the broker away): the caller is leaving.
  let closed!: () => void;
  const closing = new Promise<never>((_, reject) => (closed = () => reject(new ZpumpError('E_BUS', `not posted to ${redactUrl(options.url)}: stopping before the broker acknowledged it`))));
  closing.catch(() => undefined);
  let pending = 0;
  return {
    where: `${redactUrl(options.url)} ${options.topic ?? `${options.exchange}/v03/...`}`,
    async post(message: Announcement) {
      const topic = options.topic ?? topicOf(options.exchange, message.relPath);
      const payload = Buffer.from(renderAnnouncement(message));
      const size = publishPacketSize(topic, payload.length);
      if (maxPacket !== undefined && size > maxPacket) {
        throw new ZpumpError('E_BUS', `the MQTT broker at ${redactUrl(options.url)} refused ${message.relPath}: a ${size}-byte PUBLISH is over its maximum packet size (${maxPacket} bytes)`, { data: { refused: true } });
      }
      const publishing = client.publishAsync(topic, payload, { qos: 1, properties: { contentType: CONTENT_TYPE } }).catch((error: unknown) => {
        // mqtt.js queues a post while the broker is away; what it rejects is this message
        // (a topic or a size the broker does not take), which no retry would change.
        throw new ZpumpError('E_BUS', `the MQTT broker at ${redactUrl(options.url)} refused ${message.relPath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error, data: { refused: true } });
      });
      const waits: Promise<unknown>[] = [publishing, closing];
      let timer: NodeJS.Timeout | undefined;
      if ((options.maxAttempts ?? Infinity) < Infinity) {
        waits.push(new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ZpumpError('E_BUS', `cannot reach the MQTT broker at ${redactUrl(options.url)}: no PUBACK for ${message.relPath} within ${POST_TIMEOUT_MS / 1000} s`, { data: { connectivity: true } })), POST_TIMEOUT_MS);
        }));
      }
      pending++;
      try {
        await Promise.race(waits);
      } finally {
        pending--;
        clearTimeout(timer);
      }
    },
    async close() {
      closed();
      // A graceful end waits for unacknowledged posts, for ever when the broker is gone.
      await client.endAsync(pending > 0).catch(() => undefined);
    },
  };
}

export interface MqttSourceOptions {
  url: string;
  exchange: string;
  /** The client id names the persistent session: one per subscriber tree. */
  clientId: string;
  /** Subscription below EXCHANGE/v03, levels separated by /, e.g. # or model/# (escaped as sr3 does) */
  subtopic: string;
  /** A whole topic filter instead of EXCHANGE/v03/SUBTOPIC (WIS2: origin/a/wis2/...). */
  topic?: string;
  /** Join this MQTT v5 shared-subscription group ($share/GROUP/...): the broker splits the stream among its members. */
  shared?: string;
}

export async function createMqttSource(options: MqttSourceOptions): Promise<Source> {
  const { default: mqtt } = await import('mqtt');
  const topic = options.topic ?? mqttFilterOf(options.exchange, options.subtopic);
  const filter = options.shared ? `$share/${options.shared}/${topic}` : topic;
  return {
    where: `${redactUrl(options.url)} ${filter} (session ${options.clientId})`,
    async consume(handle: (d: Delivery) => Promise<void>, consume: ConsumeOptions) {
      let lastActivity = Date.now();
      let busy = 0;
      let count = 0;
      // Receive Maximum: the broker has at most --prefetch messages unacknowledged with us.
      const client = mqtt.connect(options.url, {
        protocolVersion: 5,
        clientId: options.clientId,
        clean: false,
        properties: { sessionExpiryInterval: SESSION_EXPIRY_S, receiveMaximum: Math.min(consume.prefetch, 65535) },
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
      });
      // mqtt.js reads the next packet only once the PUBACK of this one is sent (customHandleAcks
      // included): one message at a time, and a long transfer holds up PINGRESP too. Instead each
      // message is taken at once (answering handleMessage with an error sends no PUBACK) and
      // acknowledged by hand once applied or set aside, in whatever order that happens. mosquitto
      // matches a PUBACK by its packet id; MQTT's rule of PUBACKs in arrival order is not kept.
      client.handleMessage = (packet, callback) => {
        const messageId = packet.messageId;
        // QoS 0 (a publisher that sends it so) has nothing to acknowledge; QoS 2 is never granted.
        const acknowledged = packet.qos === 1 && messageId !== undefined;
        if (packet.qos === 2) return callback();
        busy++;
        lastActivity = Date.now();
        let acked = false;
        const session = connections;
        const ack = async () => {
          // Across a reconnection the broker sends the message again (same session): that copy gets the ack.
          if (!acknowledged || acked || session !== connections || !client.connected) return;
          acked = true;
          client['_sendPacket']({ cmd: 'puback', messageId, reasonCode: 0 });
        };
        handle({ body: new Uint8Array(packet.payload as Buffer), id: `mqtt#${++count}`, ack, setAside: ack })
          .catch((error: unknown) => consume.log(`MQTT delivery failed: ${error instanceof Error ? error.message : String(error)}`))
          .finally(() => {
            busy--;
            lastActivity = Date.now();
          });
        callback(acknowledged ? new Error('acknowledged once applied') : undefined);
      };
      let connections = 0;
      client.on('connect', () => connections++);
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
        await client.subscribeAsync(filter, { qos: 1 });
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
