// --ca-file, --ssh-key, --known-hosts, --host-fingerprint → the transport options sync and
// subscribe hand down. Checked here, before any work starts: a typo should not surface only
// after gigabytes of local data were scanned or at the first sftp message.

import { readFile } from 'node:fs/promises';
import { fromSystemError } from '../errors.js';
import type { OpenOptions } from '../transport/open.js';

export interface TransportFlags {
  caFile?: string;
  sshKey?: string;
  knownHosts?: string;
  hostFingerprint?: string;
}

export async function transportFrom(flags: TransportFlags): Promise<OpenOptions> {
  if (flags.hostFingerprint !== undefined) (await import('../transport/known-hosts.js')).normalizeFingerprint(flags.hostFingerprint);
  let ca: string | undefined;
  if (flags.caFile !== undefined) {
    try {
      ca = await readFile(flags.caFile, 'utf8');
    } catch (error) {
      throw fromSystemError(error, 'cannot read --ca-file', flags.caFile);
    }
  }
  return { ...(ca !== undefined ? { ca } : {}), sftp: { privateKeyPath: flags.sshKey, knownHostsPath: flags.knownHosts, hostFingerprint: flags.hostFingerprint } };
}
