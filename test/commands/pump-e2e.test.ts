// The whole pump, for each bus (spool, RabbitMQ, MQTT): `watch` announces a publisher tree that
// nginx serves, `subscribe` keeps a second tree. Files are created, rewritten in place,
// appended to, renamed and removed; both trees end identical, and for the large files the
// subscriber fetches a small fraction of their size (counted from nginx's log). Then the
// subscriber is killed mid-transfer and restarted: nothing lost, nothing half-written.

import { appendFile, mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../helpers/data.js';
import { startMosquitto, type MosquittoServer } from '../helpers/mosquitto.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { startCli, waitForSameTrees, type Running } from '../helpers/pump.js';
import { startRabbitmq, type RabbitmqServer } from '../helpers/rabbitmq.js';
import { requireTool } from '../helpers/require-tool.js';

const MiB = 1 << 20;
const hasNginx = requireTool('nginx', 'nginx-light');

/** Rewrite `count` 4 KiB pieces spread over the file, in place. */
async function rewriteInPlace(path: string, size: number, count: number, seed: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    for (let i = 0; i < count; i++) await fh.write(seededBytes(4096, seed + i), 0, 4096, Math.floor(((i + 0.5) / count) * (size - 4096)));
  } finally {
    await fh.close();
  }
}

/** Bytes nginx sent for paths matching `pattern` since the last clearLog(). */
async function bytesServed(nginx: NginxServer, pattern: RegExp): Promise<number> {
  return (await nginx.readLog()).filter((e) => pattern.test(e.path)).reduce((n, e) => n + e.bodyBytesSent, 0);
}

interface Bus {
  name: string;
  available: boolean;
  start(): Promise<{ spec: string; stop(): Promise<void> }>;
}

const buses: Bus[] = [
  {
    name: 'spool',
    available: true,
    async start() {
      const tmp = await dir({ unsafeCleanup: true });
      return { spec: `spool:${tmp.path}`, stop: () => tmp.cleanup() };
    },
  },
  {
    name: 'RabbitMQ',
    available: requireTool('rabbitmq-server', 'rabbitmq-server'),
    async start() {
      const server: RabbitmqServer = await startRabbitmq();
      return { spec: server.url, stop: () => server.stop() };
    },
  },
  {
    name: 'MQTT (mosquitto)',
    available: requireTool('mosquitto', 'mosquitto'),
    async start() {
      const server: MosquittoServer = await startMosquitto();
      return { spec: server.url, stop: () => server.stop() };
    },
  },
];

for (const bus of buses) {
  describe.skipIf(!hasNginx || !bus.available)(`the pump over ${bus.name}`, () => {
    let tmp: DirectoryResult;
    let nginx: NginxServer;
    let slow: NginxServer;
    let broker: { spec: string; stop(): Promise<void> };
    let pub: string;
    let mirror: string;
    const running: Running[] = [];
    const subscriberArgs = () => ['subscribe', broker.spec, '--dir', mirror, '--queue', 'e2e-mirror', '--retry-delay', '0.2'];

    beforeAll(async () => {
      tmp = await dir({ unsafeCleanup: true });
      pub = join(tmp.path, 'pub');
      mirror = join(tmp.path, 'mirror');
      await mkdir(pub);
      await mkdir(mirror);
      [nginx, slow, broker] = await Promise.all([startNginx({ root: pub }), startNginx({ root: pub, limitRate: 3 * MiB }), bus.start()]);
    });
    afterAll(async () => {
      for (const p of running) await p.kill('SIGKILL');
      await Promise.all([nginx?.stop(), slow?.stop(), broker?.stop()]);
      await tmp?.cleanup();
    });

    it('watch + subscribe keep two trees identical, fetching only changed blocks', async () => {
      // The subscriber first: on a broker, its queue or session must exist before messages flow.
      const subscriber = startCli(subscriberArgs());
      running.push(subscriber);
      await subscriber.waitFor(/ready: applying/);
      const watcher = startCli(['watch', pub, '--base-url', nginx.url, '--post', broker.spec, '--settle', '300']);
      running.push(watcher);
      await watcher.waitFor(/watching/);

      const sizes = { 'model/run1/big1.bin': 8 * MiB, 'model/run2/big2.bin': 24 * MiB, 'big3.bin': 40 * MiB };
      await mkdir(join(pub, 'model/run1'), { recursive: true });
      await mkdir(join(pub, 'model/run2'), { recursive: true });
      await mkdir(join(pub, 'notes'));
      let seed = 10;
      for (const [rel, size] of Object.entries(sizes)) await writeFile(join(pub, rel), seededBytes(size, seed++));
      await writeFile(join(pub, 'README.txt'), 'small file, sent whole\n');
      await writeFile(join(pub, 'notes/a.csv'), seededBytes(20_000, 3));
      await writeFile(join(pub, 'notes/b.csv'), seededBytes(30_000, 4));
      await waitForSameTrees(pub, mirror, 60_000, 'after the first files');

      // Rewrites in place, an append, a small rewrite, a removal.
      await nginx.clearLog();
      await rewriteInPlace(join(pub, 'model/run1/big1.bin'), sizes['model/run1/big1.bin'], 8, 100);
      await rewriteInPlace(join(pub, 'big3.bin'), sizes['big3.bin'], 40, 200);
      await appendFile(join(pub, 'model/run2/big2.bin'), seededBytes(MiB, 5));
      await writeFile(join(pub, 'notes/a.csv'), seededBytes(21_000, 6));
      await rm(join(pub, 'notes/b.csv'));
      await waitForSameTrees(pub, mirror, 60_000, 'after rewrites, append and removal');
      const changed = await bytesServed(nginx, /big\d\.bin$/);
      const total = Object.values(sizes).reduce((a, b) => a + b, 0) + MiB;
      expect(changed).toBeGreaterThan(0);
      expect(changed / total).toBeLessThan(0.12); // 48 × 4 KiB edits touch at most 48 blocks of ≤ 64 KiB, plus the appended MiB

      // A rename: the subscriber moves its copy instead of downloading it again.
      await nginx.clearLog();
      await rename(join(pub, 'model/run2/big2.bin'), join(pub, 'model/run2/big2-final.bin'));
      await waitForSameTrees(pub, mirror, 60_000, 'after a rename');
      expect(await bytesServed(nginx, /big2/)).toBeLessThan(MiB);
      expect(subscriber.stdout()).toMatch(/renamed from model\/run2\/big2\.bin/);

      await watcher.kill();
      await subscriber.kill();
      expect(subscriber.stderr()).not.toMatch(/refused|set aside/);
      // No temporaries or lock files left behind in the subscriber's tree.
      const leftovers = (await readdir(mirror, { recursive: true })).filter((n) => /zpump-(tmp|lock)$/.test(n));
      expect(leftovers).toEqual([]);
    });

    it('a subscriber killed mid-transfer loses nothing and leaves no half-written file', async () => {
      // Announce from a rate-limited nginx so the transfer is slow enough to interrupt.
      await writeFile(join(pub, 'slow.bin'), seededBytes(12 * MiB, 42));
      const posted = startCli(['announce', '--base-url', slow.url, '--root', pub, '--post', broker.spec, join(pub, 'slow.bin')]);
      const first = startCli(subscriberArgs());
      running.push(first);
      expect(await posted.exited(), posted.stderr()).toBe(0);
      // Kill it once the download has started (its temporary file exists).
      const deadline = Date.now() + 30_000;
      while (!(await readdir(mirror)).some((n) => n.startsWith('.slow.bin.') && n.endsWith('.zpump-tmp'))) {
        if (Date.now() > deadline) throw new Error(`the transfer never started:\n${first.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await first.kill('SIGKILL');
      expect((await readdir(mirror)).includes('slow.bin')).toBe(false); // never a partial file under the real name
      // A restart gets the message again (spool file still there, AMQP redelivery, MQTT session).
      const second = startCli(subscriberArgs());
      running.push(second);
      await waitForSameTrees(pub, mirror, 60_000, 'after the restart');
      await second.kill();
      expect(second.stdout()).toMatch(/slow\.bin: 12 MiB downloaded whole/);
      const leftovers = (await readdir(mirror)).filter((n) => /zpump-(tmp|lock)$/.test(n));
      expect(leftovers).toEqual([]);
    });
  });
}
