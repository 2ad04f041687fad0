// MQTT scale-out against a real mosquitto: a subscriber holds up to --prefetch messages at once
// (MQTT v5 Receive Maximum) and acknowledges each once applied, in any order; several subscribers
// split one stream through a shared subscription ($share/GROUP/...), and one killed mid-stream
// loses nothing: its persistent session keeps its share until it is back.

import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMqttSink, createMqttSource } from '../../../src/pump/bus/mqtt.js';
import type { Delivery } from '../../../src/pump/bus/types.js';
import { runCli } from '../../helpers/cli.js';
import { startMosquitto, type MosquittoServer } from '../../helpers/mosquitto.js';
import { startCli, type Running } from '../../helpers/pump.js';
import { requireTool } from '../../helpers/require-tool.js';

const hasMosquitto = requireTool('mosquitto', 'mosquitto');

const message = (relPath: string) => ({ pubTime: '20260101T000000', baseUrl: 'http://h', relPath, size: 1, identity: { method: 'sha512', value: 'x' }, extra: {} });

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!hasMosquitto)('MQTT scale-out (mosquitto)', () => {
  let tmp: DirectoryResult;
  let broker: MosquittoServer;
  const running: Running[] = [];

  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await Promise.all(running.map((r) => r.kill('SIGKILL')));
    await broker?.stop();
    await tmp?.cleanup();
  });

  it('holds --prefetch messages at once and acknowledges them in any order', async () => {
    const sink = await createMqttSink({ url: broker.url, exchange: 'xpublic', maxAttempts: 3 });
    const source = await createMqttSource({ url: broker.url, exchange: 'xpublic', clientId: 'prefetch-test', subtopic: 'pf/#' });
    const held: Delivery[] = [];
    const seen: string[] = [];
    const stop = new AbortController();
    let ready!: () => void;
    const subscribed = new Promise<void>((r) => (ready = r));
    const consuming = source.consume(async (d) => {
      seen.push(JSON.parse(new TextDecoder().decode(d.body)).relPath as string);
      held.push(d);
    }, { once: false, prefetch: 3, signal: stop.signal, log: () => undefined, onReady: () => ready() });
    await subscribed;
    for (let i = 0; i < 6; i++) await sink.post(message(`pf/f${i}`));
    await waitUntil('three deliveries', () => held.length === 3);
    // Receive Maximum 3: nothing more arrives while three are unacknowledged.
    await sleep(500);
    expect(seen).toEqual(['pf/f0', 'pf/f1', 'pf/f2']);
    // Acknowledge the last first: the broker sends the next one at once, the first two still in hand.
    await held[2]!.ack();
    await waitUntil('a fourth delivery', () => held.length === 4);
    expect(seen[3]).toBe('pf/f3');
    for (const d of [held[0]!, held[3]!, held[1]!]) await d.ack();
    await waitUntil('all six', () => held.length === 6);
    await held[5]!.ack();
    await held[4]!.ack();
    stop.abort();
    await consuming;
    // Everything was acknowledged: the same session, back again, gets nothing more.
    const again: string[] = [];
    const stop2 = new AbortController();
    const consuming2 = source.consume(async (d) => {
      again.push(new TextDecoder().decode(d.body));
      await d.ack();
    }, { once: false, prefetch: 3, signal: stop2.signal, log: () => undefined, onReady: () => undefined });
    await sleep(800);
    stop2.abort();
    await consuming2;
    expect(again).toEqual([]);
    await sink.close();
  });

  it('two subscribers sharing a group split 200 messages, disjoint and complete, one killed and restarted mid-stream', async () => {
    const pub = join(tmp.path, 'pub');
    const batch = join(pub, 'batch');
    await mkdir(batch, { recursive: true });
    const files = Array.from({ length: 200 }, (_, i) => join(batch, `f${String(i).padStart(3, '0')}.txt`));
    await Promise.all(files.map((f, i) => writeFile(f, `file ${i}\n`)));
    const mirrors = [join(tmp.path, 'a'), join(tmp.path, 'b')];
    const args = (mirror: string) => ['subscribe', broker.url, '--dir', mirror, '--queue', 'grp', '--shared', '--subtopic', 'batch/#', '--allow-file', '--prefetch', '8', '--json'];
    const start = (mirror: string) => {
      const r = startCli(args(mirror));
      running.push(r);
      return r;
    };
    let [a, b] = mirrors.map(start) as [Running, Running];
    await Promise.all([a, b].map((s) => s.waitFor(/ready: applying/)));
    const announce = async (some: string[]) => {
      const run = await runCli(['announce', '--base-url', `file://${pub}`, '--root', pub, '--post', broker.url, ...some]);
      expect(run.exitCode, run.stderr).toBe(0);
    };
    const applied = async (mirror: string): Promise<string[]> => (await readdir(join(mirror, 'batch')).catch(() => [] as string[])).filter((n) => n.endsWith('.txt'));

    await announce(files.slice(0, 100));
    await waitUntil('subscriber a to apply some', async () => (await applied(mirrors[0]!)).length >= 5);
    await a.kill('SIGKILL');
    // Half the stream goes by while a is dead: the broker keeps a's share in a's session.
    await announce(files.slice(100));
    await waitUntil('b to apply its share of the second half', async () => (await applied(mirrors[1]!)).some((n) => n >= 'f100'));
    a = start(mirrors[0]!);
    await waitUntil('all 200 applied between them', async () => (await applied(mirrors[0]!)).length + (await applied(mirrors[1]!)).length >= 200, 60_000);
    await sleep(500); // anything applied twice would show up now
    const [inA, inB] = await Promise.all(mirrors.map(applied));
    expect(inA!.filter((n) => inB!.includes(n))).toEqual([]);
    expect([...inA!, ...inB!].sort()).toEqual(files.map((f) => f.slice(batch.length + 1)).sort());
    expect(inA!.length).toBeGreaterThan(0);
    expect(inB!.length).toBeGreaterThan(0);
    // The restarted a received its share of the messages published while it was away.
    expect(inA!.some((n) => n >= 'f100')).toBe(true);
    for (const name of inA!) expect(await readFile(join(mirrors[0]!, 'batch', name), 'utf8')).toBe(`file ${Number(name.slice(1, 4))}\n`);
    await Promise.all([a, b].map((s) => s.kill()));
  });

  it('applies messages a publisher sent with QoS 0 too (nothing to acknowledge)', async () => {
    const source = await createMqttSource({ url: broker.url, exchange: 'xpublic', clientId: 'qos0-test', subtopic: 'q0/#' });
    const seen: string[] = [];
    const stop = new AbortController();
    let ready!: () => void;
    const subscribed = new Promise<void>((r) => (ready = r));
    const consuming = source.consume(async (d) => {
      seen.push(JSON.parse(new TextDecoder().decode(d.body)).relPath as string);
      await d.ack();
    }, { once: false, prefetch: 2, signal: stop.signal, log: () => undefined, onReady: () => ready() });
    await subscribed;
    const { default: mqtt } = await import('mqtt');
    const plain = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    for (let i = 0; i < 3; i++) await plain.publishAsync(`xpublic/v03/q0/f${i}`, JSON.stringify(message(`q0/f${i}`)), { qos: 0 });
    await waitUntil('three QoS 0 deliveries', () => seen.length === 3);
    await plain.endAsync();
    stop.abort();
    await consuming;
    expect(seen).toEqual(['q0/f0', 'q0/f1', 'q0/f2']);
  });

  it('--shared needs --queue', async () => {
    const run = await runCli(['subscribe', broker.url, '--dir', join(tmp.path, 'x'), '--shared', '--once']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/--shared needs --queue/);
  });
});
