// --ca-file, --ssh-key, --known-hosts, --host-fingerprint, --stall-timeout → the transport options sync and
// subscribe hand down. Checked here, before any work starts: a typo should not surface only
// after gigabytes of local data were scanned or at the first sftp message.

import { readFile } from 'node:fs/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import type { OpenOptions } from '../transport/open.js';

export interface TransportFlags {
  caFile?: string;
  sshKey?: string;
  knownHosts?: string;
  hostFingerprint?: string;
  /** Seconds without a byte before a transfer is abandoned. */
  stallTimeout?: number;
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
  if (flags.stallTimeout !== undefined && !(flags.stallTimeout > 0 && flags.stallTimeout <= 86_400)) {
    throw new ZpumpError('E_USAGE', `--stall-timeout expects seconds between 0 and 86400 (e.g. 30), got ${flags.stallTimeout}`);
  }
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(flags.stallTimeout !== undefined ? { stallTimeoutMs: Math.max(1, Math.round(flags.stallTimeout * 1000)) } : {}),
    sftp: { privateKeyPath: flags.sshKey, knownHostsPath: flags.knownHosts, hostFingerprint: flags.hostFingerprint } };
}
