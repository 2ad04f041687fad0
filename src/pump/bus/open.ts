// Picks the bus for a --post SINK or a subscribe SOURCE.

import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { ZpumpError } from '../../errors.js';
import { createSpoolSink, createSpoolSource, spoolPathOf } from './spool.js';
import { createStdinSource, createStdoutSink } from './stdio.js';
import { amqpBindingOf } from './topic.js';
import type { Sink, Source } from './types.js';

export const DEFAULT_EXCHANGE = 'xpublic';

const schemeOf = (spec: string): string => /^([a-z][a-z0-9+.-]*):/i.exec(spec)?.[1]?.toLowerCase() ?? '';

export interface SinkOptions {
  exchange?: string;
  /** MQTT: one topic for every message instead of EXCHANGE/v03/<folders> (WIS2 topics). */
  topic?: string;
  /** announce gives up after a few attempts; watch waits for the broker forever. */
  maxAttempts?: number;
  log?: (line: string) => void;
}

export async function openSink(spec: string, options: SinkOptions = {}): Promise<Sink> {
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  const scheme = schemeOf(spec);
  if (options.topic !== undefined && (scheme !== 'mqtt' && scheme !== 'mqtts')) throw new ZpumpError('E_USAGE', '--topic is an MQTT topic: use it with --post mqtt://... or mqtts://...');
  if (options.topic !== undefined && /[+#]/.test(options.topic)) throw new ZpumpError('E_USAGE', `--topic ${options.topic}: a topic to post on has no wildcards (+ or #)`);
  if (spec === '-') return createStdoutSink();
  if (scheme === 'spool') return createSpoolSink(spoolPathOf(spec));
  if (scheme === 'amqp' || scheme === 'amqps') {
    const { createAmqpSink } = await import('./amqp.js');
    return createAmqpSink({ url: spec, exchange, maxAttempts: options.maxAttempts, log: options.log });
  }
  if (scheme === 'mqtt' || scheme === 'mqtts') {
    const { createMqttSink } = await import('./mqtt.js');
    return createMqttSink({ url: spec, exchange, topic: options.topic, maxAttempts: options.maxAttempts, log: options.log });
  }
  throw new ZpumpError('E_USAGE', `--post ${spec}: expected - (stdout), spool:DIR, amqp://..., amqps://..., mqtt://... or mqtts://...`);
}

export interface SourceOptions {
  exchange?: string;
  /** Durable queue (AMQP) or session name (MQTT); default: one per host and --dir. */
  queue?: string;
  /** Topic below v03, with / between levels: # for everything, model/# for one tree, * or + for one level. */
  subtopic?: string;
  /** The subscriber's --dir, to name a default queue that survives restarts. */
  dir: string;
  /** MQTT: join the shared-subscription group named by queue; each member gets part of the stream. */
  shared?: boolean;
  /** MQTT: members of one group on one host and --dir tell their sessions apart by this number. */
  instance?: number;
  /** MQTT: a whole topic filter instead of EXCHANGE/v03/SUBTOPIC (WIS2 topics). */
  topic?: string;
}

export async function openSource(spec: string, options: SourceOptions): Promise<Source> {
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  const scheme = schemeOf(spec);
  const subtopic = options.subtopic ?? '#';
  const queue = options.queue ?? `zpump.${hostname()}.${createHash('sha1').update(resolve(options.dir)).digest('hex').slice(0, 10)}`;
  if (spec === '-') return createStdinSource();
  if (scheme === 'spool') return createSpoolSource(spoolPathOf(spec));
  if (scheme === 'amqp' || scheme === 'amqps') {
    const { createAmqpSource } = await import('./amqp.js');
    return createAmqpSource({ url: spec, exchange, queue, binding: amqpBindingOf(subtopic) });
  }
  if (options.topic !== undefined && scheme !== 'mqtt' && scheme !== 'mqtts') throw new ZpumpError('E_USAGE', '--topic names a whole MQTT topic filter: use it with mqtt:// or mqtts://, --subtopic elsewhere');
  if (scheme === 'mqtt' || scheme === 'mqtts') {
    const { createMqttSource } = await import('./mqtt.js');
    const clientId = (text: string) => text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
    if (!options.shared) return createMqttSource({ url: spec, exchange, clientId: clientId(queue), subtopic, topic: options.topic });
    if (options.queue === undefined || /[/+#]/.test(options.queue)) throw new ZpumpError('E_USAGE', '--shared needs --queue NAME, the group every member names alike (no /, + or #)');
    // Each member keeps its own persistent session: the broker holds a member's share while it restarts.
    const member = `${options.queue}.${hostname()}.${createHash('sha1').update(resolve(options.dir)).digest('hex').slice(0, 10)}.${options.instance ?? 1}`;
    return createMqttSource({ url: spec, exchange, clientId: clientId(member), subtopic, topic: options.topic, shared: options.queue });
  }
  throw new ZpumpError('E_USAGE', `SOURCE ${spec}: expected spool:DIR, amqp://..., amqps://..., mqtt://..., mqtts://... or - (stdin)`);
}
