// What goes over the wire, read back by plain clients as a Sarracenia subscriber would: AMQP
// routing key, persistence and content type; MQTT topic and v5 Content Type. Then the broker
// goes away while `watch` and `subscribe` run: announcements made meanwhile are not lost.

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startMosquitto, type MosquittoServer } from '../helpers/mosquitto.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { startCli, waitForSameTrees, type Running } from '../helpers/pump.js';
import { startRabbitmq, type RabbitmqServer } from '../helpers/rabbitmq.js';
import { requireTool } from '../helpers/require-tool.js';

const hasNginx = requireTool('nginx', 'nginx-light');
const hasRabbit = requireTool('rabbitmq-server', 'rabbitmq-server');
const hasMosquitto = requireTool('mosquitto', 'mosquitto');

interface Outage {
  name: string;
  available: boolean;
  start(): Promise<{ url: string; down(): Promise<void>; up(): Promise<void>; stop(): Promise<void>; rabbit?: RabbitmqServer; mqtt?: MosquittoServer }>;
}

const brokers: Outage[] = [
  {
    name: 'RabbitMQ',
    available: hasRabbit,
    async start() {
      const s = await startRabbitmq();
      return { url: s.url, down: () => s.stopApp(), up: () => s.startApp(), stop: () => s.stop(), rabbit: s };
    },
  },
  {
    name: 'MQTT (mosquitto)',
    available: hasMosquitto,
    async start() {
      const s = await startMosquitto();
      return { url: s.url, down: () => s.pause(), up: () => s.resume(), stop: () => s.stop(), mqtt: s };
    },
  },
];

for (const broker of brokers) {
  describe.skipIf(!hasNginx || !broker.available)(`announcements over ${broker.name}`, () => {
    let tmp: DirectoryResult;
    let nginx: NginxServer;
    let server: Awaited<ReturnType<Outage['start']>>;
    let pub: string;
    const running: Running[] = [];

    beforeAll(async () => {
      tmp = await dir({ unsafeCleanup: true });
      pub = join(tmp.path, 'pub');
      await mkdir(join(pub, 'model', 'run12'), { recursive: true });
      [nginx, server] = await Promise.all([startNginx({ root: pub }), broker.start()]);
    });
    afterAll(async () => {
      for (const p of running) await p.kill('SIGKILL');
      await Promise.all([nginx?.stop(), server?.stop()]);
      await tmp?.cleanup();
    });

    it('carry the v03 routing (key or topic) and content type application/json', async () => {
      const file = join(pub, 'model', 'run12', 'field.grib2');
      await writeFile(file, seededBytes(2 << 20, 1));
      const got = server.rabbit ? await viaAmqp(server.url, () => announce(file)) : await viaMqtt(server.url, () => announce(file));
      expect(got.route).toBe(server.rabbit ? 'v03.model.run12' : 'xpublic/v03/model/run12');
      expect(got.contentType).toBe('application/json');
      if (server.rabbit) expect((got as { persistent?: boolean }).persistent).toBe(true);
      const message = JSON.parse(got.body) as { relPath: string; zsync: { encoding: string }; identity: { method: string } };
      expect(message.relPath).toBe('model/run12/field.grib2');
      expect(message.zsync.encoding).toBe('base64');
      expect(message.identity.method).toBe('sha512');
    });

    async function announce(file: string): Promise<void> {
      const run = await runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', server.url, file]);
      expect(run.exitCode, run.stderr).toBe(0);
    }

    it('loses no announcement while the broker is down: watch queues, subscribe reconnects', async () => {
      const mirror = join(tmp.path, 'mirror');
      const subscriber = startCli(['subscribe', server.url, '--dir', mirror, '--queue', 'outage', '--retry-delay', '0.2']);
      running.push(subscriber);
      await subscriber.waitFor(/ready: applying/);
      const watcher = startCli(['watch', pub, '--base-url', nginx.url, '--post', server.url, '--settle', '200']);
      running.push(watcher);
      await watcher.waitFor(/watching/);
      await writeFile(join(pub, 'before.bin'), seededBytes(3 << 20, 2));
      await writeFile(join(pub, 'model', 'run12', 'field.grib2'), seededBytes(2 << 20, 1)); // as announced above
      await waitForSameTrees(pub, mirror, 60_000, 'before the outage');

      await server.down();
      await writeFile(join(pub, 'during-1.bin'), seededBytes(3 << 20, 3));
      await writeFile(join(pub, 'model', 'during-2.txt'), 'written while the broker was down\n');
      // Give the watcher time to notice the files and fail to post them.
      await watcher.waitFor(/during-1\.bin|went away|cannot post|retrying/, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(existsSync(join(mirror, 'during-1.bin'))).toBe(false); // the broker really was away
      await server.up();
      await waitForSameTrees(pub, mirror, 90_000, 'after the broker came back');
      await subscriber.kill();
      await watcher.kill();
    });

    // On MQTT the same split goes through $share/ groups (--shared): test/pump/bus/mqtt-shared.test.ts.
    if (broker.name === 'RabbitMQ') it('several subscribers on one queue share the work, each message applied once', async () => {
      const shared = join(tmp.path, 'shared');
      const src = join(pub, 'batch');
      await mkdir(src, { recursive: true });
      const subscribers = [0, 1].map(() => startCli(['subscribe', server.url, '--dir', shared, '--queue', 'shared', '--subtopic', 'batch/#', '--prefetch', '1', '--json']));
      running.push(...subscribers);
      await Promise.all(subscribers.map((s) => s.waitFor(/ready: applying/)));
      const files: string[] = [];
      for (let i = 0; i < 8; i++) {
        files.push(join(src, `f${i}.bin`));
        await writeFile(files[i]!, seededBytes((1 << 20) + i * 4096, 100 + i));
      }
      const run = await runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', server.url, ...files]);
      expect(run.exitCode, run.stderr).toBe(0);
      await waitForSameTrees(src, join(shared, 'batch'), 60_000, 'with two subscribers on one queue');
      await Promise.all(subscribers.map((s) => s.kill()));
      const applied = subscribers.map((s) => s.stdout().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { relPath: string }).relPath));
      expect(applied.flat().sort()).toEqual(files.map((_, i) => `batch/f${i}.bin`).sort());
      expect(applied.every((list) => list.length > 0)).toBe(true);
    });

    it('subscribe --once drains what is queued and exits (cron, make)', async () => {
      const src = join(pub, 'once');
      const target = join(tmp.path, 'once-mirror');
      await mkdir(src, { recursive: true });
      const args = ['subscribe', server.url, '--dir', target, '--queue', 'once', '--subtopic', 'once/#', '--once', '--json'];
      // The first run declares the queue (or the MQTT session) and finds it empty.
      const first = await runCli(args);
      expect(first.exitCode, first.stderr).toBe(0);
      expect(first.stdout).toBe('');
      const files = [0, 1, 2, 3, 4].map((i) => join(src, `g${i}.bin`));
      for (const [i, f] of files.entries()) await writeFile(f, seededBytes((1 << 20) + i, 300 + i));
      const posted = await runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', server.url, ...files]);
      expect(posted.exitCode, posted.stderr).toBe(0);
      const second = await runCli(args);
      expect(second.exitCode, second.stderr).toBe(0);
      expect(second.stdout.trim().split('\n')).toHaveLength(files.length);
      await waitForSameTrees(src, join(target, 'once'), 5_000, 'after subscribe --once');
    });

    it('escapes wildcard characters in folder names as sr3 does: --subtopic and a plain client bound to the escaped key both receive', async () => {
      const folder = join(pub, 'x#y', 'st*ar+');
      await mkdir(folder, { recursive: true });
      const file = join(folder, 'f.bin');
      await writeFile(file, seededBytes(50_000, 7));
      const target = join(tmp.path, 'escaped-mirror');
      const args = ['subscribe', server.url, '--dir', target, '--queue', 'escaped', '--subtopic', 'x#y/st*ar+/#', '--once', '--json'];
      const first = await runCli(args); // declares the queue (or the MQTT session)
      expect(first.exitCode, first.stderr).toBe(0);
      const escaped = server.rabbit ? 'v03.x%23y.st%22ar+' : 'xpublic/v03/x%23y/st*ar%2B';
      const got = server.rabbit ? await viaAmqp(server.url, () => announce(file), escaped) : await viaMqtt(server.url, () => announce(file), escaped);
      expect(got.route).toBe(escaped);
      expect((JSON.parse(got.body) as { relPath: string }).relPath).toBe('x#y/st*ar+/f.bin');
      const second = await runCli(args);
      expect(second.exitCode, second.stderr).toBe(0);
      expect(second.stdout.trim().split('\n')).toHaveLength(1);
      await waitForSameTrees(join(pub, 'x#y'), join(target, 'x#y'), 5_000, 'after subscribe --subtopic with escaped levels');
    });

    it('SIGTERM ends subscribe and watch while they wait for a broker that is down', async () => {
      await server.down();
      try {
        const subscriber = startCli(['subscribe', server.url, '--dir', join(tmp.path, 'term-mirror'), '--queue', 'term']);
        running.push(subscriber);
        const src = join(tmp.path, 'term-src');
        await mkdir(src, { recursive: true });
        const watcher = startCli(['watch', src, '--base-url', nginx.url, '--post', server.url, '--settle', '100']);
        running.push(watcher);
        await watcher.waitFor(/watching/);
        await writeFile(join(src, 'waiting.txt'), 'posted once the broker is back\n');
        // Both are now in a broker wait: reconnect backoff, a post that cannot be delivered.
        await subscriber.waitFor(/retrying|reconnecting|went away|cannot reach|ECONNREFUSED/i);
        await watcher.waitFor(/retrying|went away|cannot post|not reachable|ECONNREFUSED/i);
        for (const p of [subscriber, watcher]) {
          const exited = p.exited();
          process.kill(p.pid, 'SIGTERM');
          const ended = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 5_000))]);
          expect(ended, p.stderr()).not.toBe('still running');
        }
      } finally {
        await server.up();
      }
    });

    if (broker.name === 'RabbitMQ') it('truncates a routing key over 255 bytes as sr3 does: announce exits 0 with a warning and leaves no connection open', async () => {
      const rabbit = server.rabbit!;
      const dirs = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(60));
      const folder = join(pub, ...dirs);
      await mkdir(folder, { recursive: true });
      const file = join(folder, 'long.txt');
      await writeFile(file, 'a file deep down\n');
      const before = await rabbit.connections();
      const expected = `v03.${dirs.join('.')}`.slice(0, 255);
      let run: Awaited<ReturnType<typeof runCli>> | undefined;
      const got = await viaAmqp(server.url, async () => {
        // Before the fix announce never exited here: bounded so that the test reports it.
        run = await Promise.race([
          runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', server.url, file]),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('announce did not exit within 60 s')), 60_000)),
        ]);
      }, 'v03.#');
      expect(run!.exitCode, run!.stderr).toBe(0);
      expect(run!.stderr).toMatch(/routing key longer than 255 bytes, truncated/);
      expect(got.route).toBe(expected);
      expect((JSON.parse(got.body) as { relPath: string }).relPath).toBe(`${dirs.join('/')}/long.txt`);
      await expectNoNewConnection(rabbit, before);
    });

    if (broker.name === 'RabbitMQ') it('a message the broker refuses (over its max size) fails at once: exit 1 with the reason, no retries, no connection left', async () => {
      const rabbit = server.rabbit!;
      const file = join(pub, 'model', 'too-big.bin');
      await writeFile(file, seededBytes(2 << 20, 11)); // its inline signature makes the message > 4 KiB
      const before = await rabbit.connections();
      await rabbit.ctl(['eval', 'application:set_env(rabbit, max_message_size, 4096).']);
      try {
        const run = await runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', server.url, file]);
        expect(run.exitCode, run.stderr).toBe(1);
        expect(run.stderr).toMatch(/refused model\/too-big\.bin: .*PRECONDITION_FAILED/);
        expect(run.stderr).not.toMatch(/retrying/);
      } finally {
        await rabbit.ctl(['eval', 'application:unset_env(rabbit, max_message_size).']);
      }
      await expectNoNewConnection(rabbit, before);
    });

    if (broker.name !== 'RabbitMQ') it('a message over the MQTT broker\'s maximum packet size fails at once: exit 1 with the reason, no reconnect loop', async () => {
      const small = await startMosquitto('max_packet_size 2000');
      try {
        const file = join(pub, 'model', 'too-big.bin');
        await writeFile(file, seededBytes(2 << 20, 11)); // its inline signature makes the message > 2000 bytes
        const run = await Promise.race([
          runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', small.url, file]),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('announce did not exit within 45 s')), 45_000)),
        ]);
        expect(run.exitCode, run.stderr).toBe(1);
        expect(run.stderr).toMatch(/refused model\/too-big\.bin: a \d+-byte PUBLISH is over its maximum packet size \(2000 bytes\)/);
        expect(run.stderr).not.toMatch(/went away/);
      } finally {
        await small.stop();
      }
    });

    if (broker.name === 'RabbitMQ') it('announce and watch stop at once with the reason when the broker refuses the login', async () => {
      const wrong = server.url.replace('guest:guest@', 'guest:wrong@');
      const announced = await runCli(['announce', '--base-url', nginx.url, '--root', pub, '--post', wrong, join(pub, 'model', 'run12', 'field.grib2')]);
      expect(announced.exitCode, announced.stderr).toBe(1);
      expect(announced.stderr).toMatch(/refused the connection or the exchange: .*ACCESS[-_]REFUSED/);
      expect(announced.stderr).not.toMatch(/retrying|guest:wrong/);
      const watched = await runCli(['watch', join(pub, 'model'), '--base-url', nginx.url, '--post', wrong]);
      expect(watched.exitCode, watched.stderr).toBe(1);
      expect(watched.stderr).toMatch(/ACCESS[-_]REFUSED/);
    });

    if (broker.name === 'RabbitMQ') it('subscribe stops with the reason when the broker refuses its queue, instead of retrying for ever', async () => {
      const { connect } = await import('amqplib');
      const conn = await connect(server.url);
      try {
        const ch = await conn.createChannel();
        await ch.assertQueue('clash', { durable: false }); // zpump declares its queues durable
        const subscriber = startCli(['subscribe', server.url, '--dir', join(tmp.path, 'clash-mirror'), '--queue', 'clash']);
        running.push(subscriber);
        const ended = await Promise.race([subscriber.exited(), new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
        expect(ended, subscriber.stderr()).toBe(1);
        expect(subscriber.stderr()).toMatch(/refused queue clash: .*PRECONDITION[-_]FAILED/);
      } finally {
        await conn.close();
      }
    });
  });
}

/** Every connection the broker lists was there before (a connection left open by the command would not be). */
async function expectNoNewConnection(rabbit: RabbitmqServer, before: string[]): Promise<void> {
  const added = async () => (await rabbit.connections()).filter((c) => !before.includes(c));
  // The broker drops a closed connection from its list shortly after: poll a while.
  let extra = await added();
  for (let i = 0; i < 50 && extra.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    extra = await added();
  }
  expect(extra).toEqual([]);
}

async function viaAmqp(url: string, act: () => Promise<void>, binding = 'v03.model.#'): Promise<{ route: string; contentType: string; persistent: boolean; body: string }> {
  const { connect } = await import('amqplib');
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    await ch.assertExchange('xpublic', 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, 'xpublic', binding);
    await act();
    for (let i = 0; i < 100; i++) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg) return { route: msg.fields.routingKey, contentType: String(msg.properties.contentType), persistent: msg.properties.deliveryMode === 2, body: msg.content.toString() };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no message arrived');
  } finally {
    await conn.close();
  }
}

async function viaMqtt(url: string, act: () => Promise<void>, filter = 'xpublic/v03/#'): Promise<{ route: string; contentType: string; body: string }> {
  const { default: mqtt } = await import('mqtt');
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  try {
    await client.subscribeAsync(filter, { qos: 1 });
    const got = new Promise<{ route: string; contentType: string; body: string }>((resolve) =>
      client.once('message', (topic, payload, packet) => resolve({ route: topic, contentType: String(packet.properties?.contentType), body: payload.toString() })),
    );
    await act();
    return await got;
  } finally {
    await client.endAsync();
  }
}
