// OpenSSH's sshd with the internal-sftp subsystem, key-only login for the current user, on a private port.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { launch, makeTempDir, waitUntilReady } from './daemon.js';
import { freePort } from './ports.js';
import { findTool } from './require-tool.js';

const run = promisify(execFile);

export interface SshdServer {
  port: number;
  host: '127.0.0.1';
  /** The user running the tests (e.g. root): the only one that can log in. */
  user: string;
  privateKeyPath: string;
  privateKey: Buffer;
  /** SHA256:... exactly as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  /** A known_hosts file with one line for [127.0.0.1]:PORT. */
  knownHostsPath: string;
  stop(): Promise<void>;
}

/** Ready when the server sends its SSH identification line. */
function sendsBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
  });
}

export async function startSshd(_opts: Record<string, never> = {}): Promise<SshdServer> {
  // sshd re-executes itself and insists on an absolute path.
  const sshd = findTool('/usr/sbin/sshd') ?? findTool('sshd');
  if (!sshd) throw new Error('sshd is not installed (apt-get install openssh-server)');
  // Privilege separation directory; Debian creates it only in its init script.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => undefined);

  const tmp = await makeTempDir('sshd');
  const dir = tmp.dir;
  try {
    const f = (name: string) => path.join(dir, name);
    const port = await freePort();
    const user = os.userInfo().username;
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'zpump-test-host', '-f', f('host_key')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'zpump-test-client', '-f', f('client_key')]);
    await writeFile(f('authorized_keys'), await readFile(f('client_key.pub')));
    const hostPub = (await readFile(f('host_key.pub'), 'utf8')).trim().split(/\s+/);
    await writeFile(f('known_hosts'), `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}\n`);
    const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', f('host_key.pub')]);
    const hostKeyFingerprint = stdout.split(/\s+/)[1] ?? '';

    // StrictModes no: the temp dir's owner/modes are not what sshd expects of a home dir.
    // UsePAM no: PAM would want a full login session; key auth alone is what the tests need.
    // MaxStartups/MaxSessions: tests may open many SFTP connections at once.
    await writeFile(f('sshd_config'), `
ListenAddress 127.0.0.1
Port ${port}
HostKey ${f('host_key')}
PidFile ${f('sshd.pid')}
AuthorizedKeysFile ${f('authorized_keys')}
AllowUsers ${user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
Subsystem sftp internal-sftp
`);
    const daemon = await launch('sshd', sshd, ['-D', '-e', '-f', f('sshd_config')], { logPath: f('sshd.log'), cwd: dir });
    try {
      await waitUntilReady(daemon, () => sendsBanner(port), 10_000);
    } catch (e) {
      await daemon.stop();
      throw e;
    }
    return {
      port,
      host: '127.0.0.1',
      user,
      privateKeyPath: f('client_key'),
      privateKey: await readFile(f('client_key')),
      hostKeyFingerprint,
      knownHostsPath: f('known_hosts'),
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
