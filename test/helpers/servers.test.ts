// Proves that each real server starts privately and does what the other tests rely on.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect as amqpConnect } from 'amqplib';
import mqtt from 'mqtt';
import { Client } from 'ssh2';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTool, startMosquitto, startNginx, startRabbitmq, startSshd } from './servers.js';

let dataDir: string;
let data: Buffer;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'zpump-servers-test-'));
  data = randomBytes(100_000);
  await writeFile(path.join(dataDir, 'data.bin'), data);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('requireTool', () => {
  it('finds installed tools, skips missing ones locally and fails loudly under CI=true', () => {
    const saved = process.env.CI;
    try {
      expect(requireTool('sh', 'dash')).toBe(true);
      process.env.CI = 'false';
      expect(requireTool('zpump-no-such-tool', 'no-such-package')).toBe(false);
      process.env.CI = 'true';
      expect(() => requireTool('zpump-no-such-tool', 'no-such-package')).toThrow(/apt-get install no-such-package/);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });
});

describe.skipIf(!requireTool('nginx', 'nginx-light'))('nginx', () => {
  it('answers two ranges with 206 multipart and logs the range and bytes', async () => {
    const srv = await startNginx({ root: dataDir });
    try {
      expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/`);
      const res = await fetch(new URL('data.bin', srv.url), {
        headers: { Range: 'bytes=0-9,1000-1009', 'User-Agent': 'zpump-test' },
      });
      expect(res.status).toBe(206);
      const type = res.headers.get('content-type') ?? '';
      expect(type).toMatch(/^multipart\/byteranges; boundary=/);
      const body = Buffer.from(await res.arrayBuffer());
      // Each part's bytes must appear verbatim inside the multipart body.
      expect(body.includes(data.subarray(0, 10))).toBe(true);
      expect(body.includes(data.subarray(1000, 1010))).toBe(true);
      expect(body.toString('latin1')).toContain('Content-Range: bytes 1000-1009/100000');

      const log = await srv.readLog();
      expect(log).toHaveLength(1);
      const e = log[0]!;
      expect(e).toMatchObject({ method: 'GET', path: '/data.bin', status: 206, range: 'bytes=0-9,1000-1009', userAgent: 'zpump-test', connectionRequests: 1 });
      expect(e.bodyBytesSent).toBe(body.length);
      expect(e.bytesSent).toBeGreaterThan(e.bodyBytesSent);
      expect(e.connection).toBeGreaterThan(0);

      await srv.clearLog();
      expect(await srv.readLog()).toEqual([]);
      const whole = await fetch(new URL('data.bin', srv.url));
      expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
      expect((await srv.readLog()).map((x) => [x.status, x.range, x.bodyBytesSent])).toEqual([[200, '', data.length]]);
    } finally {
      await srv.stop();
    }
  });

  it('gives the whole file when a request has more ranges than maxRanges', async () => {
    const srv = await startNginx({ root: dataDir, maxRanges: 1 });
    try {
      const res = await fetch(new URL('data.bin', srv.url), { headers: { Range: 'bytes=0-9,20-29' } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    } finally {
      await srv.stop();
    }
  });

  it('serves https with a certificate the generated CA vouches for', async () => {
    const srv = await startNginx({ root: dataDir, tls: true });
    const ca = await readFile(srv.caFile!);
    try {
      expect(srv.url).toBe(`https://127.0.0.1:${srv.port}/`);
      for (const host of ['127.0.0.1', 'localhost']) {
        const res = await httpsGet(`https://${host}:${srv.port}/data.bin`, { ca, headers: { Range: 'bytes=5-14' } });
        expect(res.status).toBe(206);
        expect(res.body.equals(data.subarray(5, 15))).toBe(true);
      }
      // Without the CA the certificate must be refused: proof that TLS verification is really in play.
      await expect(httpsGet(`${srv.url}data.bin`, {})).rejects.toThrow(/certificate/);
      expect((await srv.readLog()).map((x) => x.bodyBytesSent)).toEqual([10, 10]);
    } finally {
      await srv.stop();
    }
  });
});

describe.skipIf(!requireTool('/usr/sbin/sshd', 'openssh-server'))('sshd', () => {
  it('serves an SFTP read at an offset, with the advertised host key', async () => {
    const srv = await startSshd({});
    const conn = new Client();
    let seenFingerprint = '';
    try {
      await new Promise<void>((resolve, reject) => {
        conn.once('ready', resolve).once('error', reject);
        conn.connect({
          host: srv.host,
          port: srv.port,
          username: srv.user,
          privateKey: srv.privateKey,
          hostVerifier: (key: Buffer) => {
            seenFingerprint = 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
            return seenFingerprint === srv.hostKeyFingerprint;
          },
        });
      });
      expect(seenFingerprint).toBe(srv.hostKeyFingerprint);
      const knownHosts = await readFile(srv.knownHostsPath, 'utf8');
      expect(knownHosts).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${srv.port} ssh-ed25519 `));

      const got = await new Promise<Buffer>((resolve, reject) => {
        conn.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.open(path.join(dataDir, 'data.bin'), 'r', (err2, handle) => {
            if (err2) return reject(err2);
            const buf = Buffer.alloc(4096);
            sftp.read(handle, buf, 0, buf.length, 12_345, (err3, n) => {
              if (err3) return reject(err3);
              sftp.close(handle, () => resolve(buf.subarray(0, n)));
            });
          });
        });
      });
      expect(got.equals(data.subarray(12_345, 12_345 + 4096))).toBe(true);
    } finally {
      conn.end();
      await srv.stop();
    }
  });
});

describe.skipIf(!requireTool('rabbitmq-server', 'rabbitmq-server'))('rabbitmq', () => {
  it('round-trips a message through a queue', async () => {
    const srv = await startRabbitmq();
    try {
      expect(srv.url).toBe(`amqp://guest:guest@127.0.0.1:${srv.port}`);
      const conn = await amqpConnect(srv.url);
      try {
        const ch = await conn.createConfirmChannel();
        const { queue } = await ch.assertQueue('', { exclusive: true });
        const payload = randomBytes(32).toString('hex');
        ch.sendToQueue(queue, Buffer.from(payload), { contentType: 'application/json' });
        await ch.waitForConfirms();
        const msg = await new Promise<{ body: string; type: string | undefined }>((resolve) => {
          void ch.consume(queue, (m) => {
            if (!m) return;
            ch.ack(m);
            resolve({ body: m.content.toString(), type: m.properties.contentType as string | undefined });
          });
        });
        expect(msg).toEqual({ body: payload, type: 'application/json' });
      } finally {
        await conn.close();
      }
    } finally {
      await srv.stop();
    }
  });
});

describe.skipIf(!requireTool('mosquitto', 'mosquitto'))('mosquitto', () => {
  it('round-trips an MQTT v5 message with its content type', async () => {
    const srv = await startMosquitto();
    try {
      expect(srv.url).toBe(`mqtt://127.0.0.1:${srv.port}`);
      const client = await mqtt.connectAsync(srv.url, { protocolVersion: 5 });
      try {
        const payload = randomBytes(32).toString('hex');
        const received = new Promise<{ topic: string; body: string; type: string | undefined }>((resolve) =>
          client.on('message', (topic, body, packet) =>
            resolve({ topic, body: body.toString(), type: packet.properties?.contentType }),
          ),
        );
        await client.subscribeAsync('xpublic/v03/#', { qos: 1 });
        await client.publishAsync('xpublic/v03/model/run12', payload, { qos: 1, properties: { contentType: 'application/json' } });
        expect(await received).toEqual({ topic: 'xpublic/v03/model/run12', body: payload, type: 'application/json' });
      } finally {
        await client.endAsync();
      }
    } finally {
      await srv.stop();
    }
  });
});

function httpsGet(url: string, options: { ca?: Buffer; headers?: Record<string, string> }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...(options.ca ? { ca: options.ca } : {}), headers: options.headers ?? {}, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
