// Picks the transport for a data URL.

import { ZpumpError } from '../errors.js';
import { createFileSource } from './file.js';
import type { RangeSource } from './types.js';

export interface SftpOptions {
  /** Private key file (OpenSSH or PEM); without it the SSH agent ($SSH_AUTH_SOCK) is asked. */
  privateKeyPath?: string;
  /** known_hosts file to check the server's host key against (default ~/.ssh/known_hosts). */
  knownHostsPath?: string;
  /** Accept a server whose host key has this fingerprint (SHA256:... as ssh-keygen -l prints it). */
  hostFingerprint?: string;
}

/** How long a transfer may receive nothing before it is abandoned (`--stall-timeout`). */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/** How to reach data servers: everything a transport may need besides the URL. */
export interface OpenOptions {
  /** Extra CA certificates (PEM text) for https. */
  ca?: string;
  sftp?: SftpOptions;
  /** Silence (connecting, or between two pieces of data) after which a transfer fails with E_NETWORK. */
  stallTimeoutMs?: number;
}

/** The options fetchDocument and the http source take, from the transport options. */
export function httpOptionsFrom(options: OpenOptions = {}): { ca?: string; timeoutMs: number } {
  return { ...(options.ca !== undefined ? { ca: options.ca } : {}), timeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS };
}

export async function openRangeSource(url: string, options: OpenOptions = {}): Promise<RangeSource> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') return createFileSource(url);
  if (scheme === 'http' || scheme === 'https') {
    const { createHttpSource } = await import('./http.js');
    return createHttpSource(url, httpOptionsFrom(options));
  }
  if (scheme === 'sftp') {
    const { createSftpSource } = await import('./sftp.js');
    return createSftpSource(url, options.sftp, options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS);
  }
  throw new ZpumpError('E_UNSUPPORTED', `cannot fetch data over ${scheme}: (supported: http, https, sftp, file, local paths)`);
}
