// WIS2 over MQTT with mosquitto: the publisher posts WNM on an operator-given WIS2 topic, the
// subscriber takes a WIS2 topic filter (--topic) and applies the data.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dir, type DirectoryResult } from 'tmp-promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seededBytes } from '../helpers/data.js';
import { startMosquitto, type MosquittoServer } from '../helpers/mosquitto.js';
import { requireTool } from '../helpers/require-tool.js';
import { wnmSchemaErrors } from '../helpers/wnm-schema.js';

const hasMosquitto = requireTool('mosquitto', 'mosquitto');
const TOPIC = 'origin/a/wis2/xx-zpump/data/core/weather/surface-based-observations/synop';

describe.skipIf(!hasMosquitto)('WIS2 notification messages over MQTT (mosquitto)', () => {
  let tmp: DirectoryResult;
  let broker: MosquittoServer;
  beforeAll(async () => {
    tmp = await dir({ unsafeCleanup: true });
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
    await tmp?.cleanup();
  });

  it('announce --format wis2 --topic posts WNM there; subscribe --topic applies them', async () => {
    const pub = join(tmp.path, 'pub');
    const mirror = join(tmp.path, 'mirror');
    await mkdir(join(pub, 'synop'), { recursive: true });
    const data = seededBytes((2 << 20) + 77, 5);
    await writeFile(join(pub, 'synop', 'a.bufr4'), data);
    const subscribe = ['subscribe', broker.url, '--topic', 'origin/a/wis2/+/data/core/#', '--queue', 'wis2', '--dir', mirror, '--allow-file', '--once', '--json'];
    expect((await runCli(subscribe)).exitCode).toBe(0); // the session exists before the post
    const announced = await runCli(['announce', '--format', 'wis2', '--topic', TOPIC, '--base-url', `file://${pub}`, '--root', pub, '--post', broker.url, join(pub, 'synop', 'a.bufr4')]);
    expect(announced.exitCode, announced.stderr).toBe(0);
    expect(announced.stderr).toContain(TOPIC);
    const run = await runCli(subscribe);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toMatchObject({ relPath: 'synop/a.bufr4', action: 'whole' });
    expect(Buffer.compare(await readFile(join(mirror, 'synop', 'a.bufr4')), data)).toBe(0);
    // What went over the wire is a WNM, also for a plain MQTT client.
    const { default: mqtt } = await import('mqtt');
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const got = new Promise<string>((resolve) => client.on('message', (_t, m) => resolve(m.toString())));
    await client.subscribeAsync(TOPIC, { qos: 1 });
    await runCli(['announce', '--format', 'wis2', '--topic', TOPIC, '--base-url', `file://${pub}`, '--root', pub, '--post', broker.url, join(pub, 'synop', 'a.bufr4')]);
    expect(wnmSchemaErrors(JSON.parse(await got))).toEqual([]);
    await client.endAsync();
  });

  it('refuses a --topic with wildcards or on another bus', async () => {
    const f = join(tmp.path, 'x.txt');
    await writeFile(f, 'x');
    const wild = await runCli(['announce', '--topic', 'origin/a/wis2/#', '--base-url', 'http://h', '--root', tmp.path, '--post', broker.url, f]);
    expect(wild.exitCode).toBe(2);
    expect(wild.stderr).toMatch(/no wildcards/);
    const spool = await runCli(['announce', '--topic', 'a/b', '--base-url', 'http://h', '--root', tmp.path, '--post', `spool:${tmp.path}/s`, f]);
    expect(spool.exitCode).toBe(2);
    expect(spool.stderr).toMatch(/--topic is an MQTT topic/);
  });
});
