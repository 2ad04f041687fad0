// Where a message goes on each bus, as Sarracenia sr3 writes it, so that sr3 subscribers bound to
// a folder receive zpump's messages and zpump's --subtopic matches sr3's posts:
// * AMQP: routing key v03.<dir>.<dir>..., with the topic wildcards # and * escaped as %23 and %22
//   (a dir named "x#y" would otherwise be a pattern in a binding and an illegal word in a key),
//   cut to 255 bytes on a UTF-8 boundary (AMQP's short-string limit; the broker refuses longer
//   keys). A truncated key still matches v03.# and every binding on its first levels.
// * MQTT: topic <exchange>/v03/<dir>/<dir>..., with # and + escaped as %23 and %2B (wildcards
//   are illegal in a PUBLISH: the broker would drop the connection).
// A subscriber's --subtopic is written with / between levels; a level that is exactly # is the
// multi-level wildcard, exactly * or + the single-level one, on either bus. Every other level is
// a literal folder name, escaped the same way as the publisher escapes it.

import { ZpumpError } from '../../errors.js';

export const AMQP_KEY_MAX_BYTES = 255;

const escapeAmqpWord = (word: string): string => word.replaceAll('#', '%23').replaceAll('*', '%22');
const escapeMqttLevel = (level: string): string => level.replaceAll('#', '%23').replaceAll('+', '%2B');

function directoriesOf(relPath: string): string[] {
  return relPath.split('/').filter((p) => p !== '' && p !== '.').slice(0, -1);
}

export interface RoutingKey {
  key: string;
  /** The escaped key was longer than 255 bytes and has been cut. */
  truncated: boolean;
}

export function amqpRoutingKey(relPath: string): RoutingKey {
  const full = ['v03', ...directoriesOf(relPath).map(escapeAmqpWord)].join('.');
  const bytes = Buffer.from(full, 'utf8');
  if (bytes.length <= AMQP_KEY_MAX_BYTES) return { key: full, truncated: false };
  let cut = AMQP_KEY_MAX_BYTES;
  // bytes[cut] is the first byte left out: if it continues a character, that character goes too.
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return { key: bytes.subarray(0, cut).toString('utf8'), truncated: true };
}

/** AMQP routing key for relPath (escaped, at most 255 bytes). */
export function routingKeyOf(relPath: string): string {
  return amqpRoutingKey(relPath).key;
}

/** MQTT topic for relPath: EXCHANGE/v03 then its directories, escaped. */
export function topicOf(exchange: string, relPath: string): string {
  return [exchange, 'v03', ...directoriesOf(relPath).map(escapeMqttLevel)].join('/');
}

function levelsOf(subtopic: string): string[] {
  return subtopic.split('/').filter((p) => p !== '');
}

/** AMQP binding pattern for a --subtopic such as model/# or x#y/*. */
export function amqpBindingOf(subtopic: string): string {
  const words = levelsOf(subtopic).map((level) => (level === '#' ? '#' : level === '*' || level === '+' ? '*' : escapeAmqpWord(level)));
  return ['v03', ...words].join('.');
}

/** MQTT topic filter for a --subtopic such as model/# or x#y/+. */
export function mqttFilterOf(exchange: string, subtopic: string): string {
  const levels = levelsOf(subtopic);
  const multi = levels.indexOf('#');
  if (multi !== -1 && multi !== levels.length - 1) throw new ZpumpError('E_USAGE', `--subtopic ${subtopic}: # matches everything below, so it can only be the last level`);
  const filter = levels.map((level) => (level === '#' ? '#' : level === '*' || level === '+' ? '+' : escapeMqttLevel(level)));
  return [exchange, 'v03', ...filter].join('/');
}
