// RabbitMQ as a private node: own node name, ports, data dirs, Erlang cookie and epmd.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { chownTree, launch, logTail, makeTempDir, systemUser, waitUntilReady, type Daemon } from './daemon.js';
import { canConnect, freePort } from './ports.js';
import { findTool } from './require-tool.js';

const run = promisify(execFile);

export interface RabbitmqServer {
  port: number;
  /** amqp://guest:guest@127.0.0.1:PORT */
  url: string;
  /** Stop the broker application (clients are disconnected, the port closes); the node stays up. */
  stopApp(): Promise<void>;
  /** Start it again, durable queues and persistent messages included. */
  startApp(): Promise<void>;
  /** The client connections the broker holds now (`rabbitmqctl list_connections`), one line each. */
  connections(): Promise<string[]>;
  /** Run rabbitmqctl against this node (e.g. eval to change a setting at run time); its stdout. */
  ctl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

// Debian's /usr/sbin/rabbitmq-server is a wrapper that `su`s to user rabbitmq and resets HOME (hence the
// Erlang cookie) to /var/lib/rabbitmq. Calling the real scripts with our own uid and env keeps it all private.
function rabbitScript(name: string): string | undefined {
  const debian = `/usr/lib/rabbitmq/bin/${name}`;
  return existsSync(debian) ? debian : findTool(name);
}

export async function startRabbitmq(): Promise<RabbitmqServer> {
  const server = rabbitScript('rabbitmq-server');
  const ctl = rabbitScript('rabbitmqctl');
  const epmd = findTool('epmd');
  if (!server || !ctl || !epmd) throw new Error('rabbitmq-server is not installed (apt-get install rabbitmq-server)');

  const tmp = await makeTempDir('rabbitmq');
  const dir = tmp.dir;
  const started: Daemon[] = [];
  const stopAll = async () => {
    for (const d of [...started].reverse()) await d.stop();
  };
  try {
    const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    const node = `zpump${randomBytes(4).toString('hex')}@localhost`;
    await mkdir(path.join(dir, 'mnesia'));
    await mkdir(path.join(dir, 'log'));
    await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
    await writeFile(path.join(dir, 'rabbitmq-env.conf'), '');
    await writeFile(path.join(dir, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${port}\n`);
    // As root the broker must not run as root (Debian's way); as anyone else it runs as that user.
    const owner = process.getuid?.() === 0 ? await systemUser('rabbitmq') : undefined;
    if (owner) await chownTree(dir, owner);

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: dir, // the Erlang cookie is created here, private to this node and its rabbitmqctl
      RABBITMQ_NODENAME: node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'), // without .conf, as rabbitmq-env expects
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
      RABBITMQ_FEATURE_FLAGS_FILE: path.join(dir, 'feature_flags'),
      RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'), // not /etc/rabbitmq/rabbitmq-env.conf
      // A private epmd on a private port: the system's (or another test's) epmd is never touched.
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_EPMD_PORT: String(epmdPort),
    };
    const asOwner = { env, cwd: dir, uid: owner?.uid, gid: owner?.gid };

    // Started by us in the foreground (no -daemon), so we hold its pid; the node then reuses it.
    started.push(await launch('epmd', epmd, ['-address', '127.0.0.1', '-port', String(epmdPort)], {
      ...asOwner,
      logPath: path.join(dir, 'epmd.log'),
    }));
    await waitUntilReady(started[0]!, () => canConnect(epmdPort), 10_000, 50);

    const broker = await launch('rabbitmq-server', server, [], { ...asOwner, logPath: path.join(dir, 'server.log') });
    started.push(broker);
    // The AMQP listener opens last in the boot sequence; then make sure rabbitmqctl reaches the node,
    // since stop() depends on it.
    await waitUntilReady(broker, () => canConnect(port), 60_000, 200);
    await run(ctl, ['-n', node, 'status'], { ...asOwner, timeout: 30_000 }).catch(async (e: Error) => {
      throw new Error(`rabbitmqctl cannot reach ${node}: ${e.message}\nServer log:\n${await logTail(broker.logPath)}`);
    });

    return {
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      async stopApp() {
        await run(ctl, ['-n', node, 'stop_app'], { ...asOwner, timeout: 60_000 });
      },
      async startApp() {
        await run(ctl, ['-n', node, 'start_app'], { ...asOwner, timeout: 60_000 });
        await waitUntilReady(broker, () => canConnect(port), 60_000, 200);
      },
      async connections() {
        const { stdout } = await run(ctl, ['-n', node, 'list_connections', '--quiet', '--no-table-headers', 'name', 'peer_port', 'state'], { ...asOwner, timeout: 30_000 });
        return stdout.split('\n').map((line) => line.trim()).filter(Boolean);
      },
      async ctl(args: string[]) {
        return (await run(ctl, ['-n', node, ...args], { ...asOwner, timeout: 30_000 })).stdout;
      },
      async stop() {
        try {
          await run(ctl, ['-n', node, 'stop'], { ...asOwner, timeout: 30_000 });
          await Promise.race([broker.exited, new Promise((r) => setTimeout(r, 15_000))]);
        } catch {
          // rabbitmqctl failed: the signals below still end the node
        }
        await stopAll();
        await tmp.remove();
      },
    };
  } catch (e) {
    await stopAll();
    await tmp.remove();
    throw e;
  }
}
