// mosquitto (MQTT 3.1.1 and 5) on a private port, anonymous access for tests.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chownTree, launch, makeTempDir, systemUser, waitUntilReady } from './daemon.js';
import { canConnect, freePort } from './ports.js';
import { findTool } from './require-tool.js';

export interface MosquittoServer {
  port: number;
  /** mqtt://127.0.0.1:PORT */
  url: string;
  /** Stop the broker (it saves its sessions and queued messages to disk)... */
  pause(): Promise<void>;
  /** ...and start it again on the same port from the same persistence file. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** `extraConfig`: more mosquitto.conf lines (e.g. max_packet_size 2000). */
export async function startMosquitto(extraConfig = ''): Promise<MosquittoServer> {
  const mosquitto = findTool('mosquitto');
  if (!mosquitto) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  const tmp = await makeTempDir('mosquitto');
  const dir = tmp.dir;
  try {
    const port = await freePort();
    // No pid_file: as root mosquitto writes it after dropping to user mosquitto and fails. We hold the pid anyway.
    // max_queued_messages: the default 1000 would silently drop messages queued for an offline subscriber.
    await writeFile(path.join(dir, 'mosquitto.conf'), `
listener ${port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location ${dir}/
max_queued_messages 100000
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
${extraConfig}
`);
    // Started as root it drops to user mosquitto, which must be able to write its persistence file here.
    const owner = process.getuid?.() === 0 ? await systemUser('mosquitto') : undefined;
    if (owner) await chownTree(dir, owner);
    const start = async () => {
      const d = await launch('mosquitto', mosquitto, ['-c', path.join(dir, 'mosquitto.conf')], {
        logPath: path.join(dir, 'mosquitto.log'),
        cwd: dir,
      });
      try {
        await waitUntilReady(d, () => canConnect(port), 10_000);
      } catch (e) {
        await d.stop();
        throw e;
      }
      return d;
    };
    let daemon = await start();
    return {
      port,
      url: `mqtt://127.0.0.1:${port}`,
      async pause() {
        await daemon.stop();
      },
      async resume() {
        daemon = await start();
      },
      async stop() {
        await daemon.stop();
        await tmp.remove();
      },
    };
  } catch (e) {
    await tmp.remove();
    throw e;
  }
}
