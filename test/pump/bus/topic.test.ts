// Routing keys, topics and subscriptions as sr3 writes them: wildcard characters in folder names
// escaped, AMQP keys cut to 255 bytes on a UTF-8 boundary, --subtopic escaped the same way.

import { describe, expect, it } from 'vitest';
import { amqpBindingOf, amqpRoutingKey, mqttFilterOf, routingKeyOf, topicOf } from '../../../src/pump/bus/topic.js';

describe('AMQP routing keys', () => {
  it('escape # and * in folder names (sr3: %23, %22), not the file name', () => {
    expect(amqpRoutingKey('x#y/st*ar+/f#*.bin')).toEqual({ key: 'v03.x%23y.st%22ar+', truncated: false });
    expect(routingKeyOf('model/run12/field.grib2')).toBe('v03.model.run12');
    expect(routingKeyOf('top.txt')).toBe('v03');
  });

  it('are cut to 255 bytes when longer, with the flag set', () => {
    const dirs = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(60));
    const { key, truncated } = amqpRoutingKey(`${dirs.join('/')}/f.bin`);
    expect(truncated).toBe(true);
    expect(Buffer.byteLength(key)).toBe(255);
    expect(`v03.${dirs.join('.')}`.startsWith(key)).toBe(true);
    expect(amqpRoutingKey(`${'a'.repeat(251)}/f`)).toEqual({ key: `v03.${'a'.repeat(251)}`, truncated: false }); // exactly 255
  });

  it('never cut inside a UTF-8 character', () => {
    // 'é' is 2 bytes, '€' 3: with these offsets byte 255 falls inside a character.
    for (const [char, pad] of [['é', 0], ['é', 1], ['€', 0], ['€', 1], ['€', 2]] as const) {
      const { key, truncated } = amqpRoutingKey(`${'x'.repeat(pad)}${char.repeat(200)}/f`);
      expect(truncated).toBe(true);
      const bytes = Buffer.byteLength(key);
      expect(bytes).toBeLessThanOrEqual(255);
      expect(bytes).toBeGreaterThan(255 - Buffer.byteLength(char));
      expect(key).not.toContain('\uFFFD');
      expect(Buffer.from(key).toString()).toBe(key);
    }
  });
});

describe('MQTT topics', () => {
  it('escape # and + in folder names (sr3: %23, %2B)', () => {
    expect(topicOf('xpublic', 'x#y/st*ar+/f.bin')).toBe('xpublic/v03/x%23y/st*ar%2B');
    expect(topicOf('xpublic', 'model/run12/field.grib2')).toBe('xpublic/v03/model/run12');
  });
});

describe('--subtopic', () => {
  it('keeps whole-level wildcards and escapes literal levels like the publisher does', () => {
    expect(amqpBindingOf('#')).toBe('v03.#');
    expect(amqpBindingOf('x#y/st*ar+/#')).toBe('v03.x%23y.st%22ar+.#');
    expect(amqpBindingOf('model/*/+')).toBe('v03.model.*.*');
    expect(mqttFilterOf('xpublic', 'x#y/st*ar+/#')).toBe('xpublic/v03/x%23y/st*ar%2B/#');
    expect(mqttFilterOf('xpublic', 'model/*/+')).toBe('xpublic/v03/model/+/+');
  });

  it('matches the key of a file in that folder', () => {
    const rel = 'x#y/st*ar+/f.bin';
    expect(amqpBindingOf('x#y/st*ar+').replace(/\.#$/, '')).toBe(routingKeyOf(rel));
    expect(mqttFilterOf('xpublic', 'x#y/st*ar+')).toBe(topicOf('xpublic', rel));
  });

  it('refuses an MQTT # that is not the last level', () => {
    expect(() => mqttFilterOf('xpublic', '#/model')).toThrow(/can only be the last level/);
  });
});
