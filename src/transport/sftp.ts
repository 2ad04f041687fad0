// Byte ranges over SFTP (ssh2). One SSH connection and one open handle per source, reused across
// readRanges calls. Several reads stay in flight so the round trip does not set the pace, yet
// chunks reach the consumer strictly in request order. The server's host key is checked against
// known_hosts or a given fingerprint; an unknown key is refused, never silently trusted.

import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client, ConnectConfig, SFTPWrapper } from 'ssh2';
import { ZpumpError, fromSystemError } from '../errors.js';
import { fingerprintOf, keyTypeOf, knownHostsEntries, normalizeFingerprint, preferredHostKeyAlgorithms, type KnownHostsEntries } from './known-hosts.js';
import { DEFAULT_STALL_TIMEOUT_MS, type SftpOptions } from './open.js';
import type { ByteRange, RangeChunk, RangeSource, ReadRangesOptions, TransferStats } from './types.js';

// OpenSSH's sftp-server answers at most 255 KiB per read; asking for more only buys short reads.
const READ_SIZE = 255 * 1024;
const IN_FLIGHT = 8;
const RETRIES = 4;
const RETRY_BASE_MS = 200;

// SSH_FX_* status codes that ssh2 puts in error.code.
const FX_EOF = 1;
const FX_NO_SUCH_FILE = 2;
const FX_PERMISSION_DENIED = 3;

export interface SftpTarget {
  host: string;
  port: number;
  user: string;
  path: string;
  /** The URL without a password, for messages. */
  location: string;
}

export function parseSftpUrl(url: string): SftpTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ZpumpError('E_USAGE', `not a valid URL: ${url} (expected sftp://user@host:port/absolute/path)`);
  }
  if (u.protocol !== 'sftp:') throw new ZpumpError('E_USAGE', `not an sftp URL: ${url}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new ZpumpError('E_USAGE', `${url} names no host (expected sftp://user@host:port/absolute/path)`);
  if (u.password) throw new ZpumpError('E_USAGE', `sftp://${u.host}: passwords in URLs are not supported; log in with a key (--ssh-key) or an SSH agent`);
  if (u.search || u.hash) throw new ZpumpError('E_USAGE', `${url}: percent-encode ? and # in sftp paths (%3F, %23)`);
  let filePath: string;
  let user: string;
  try {
    filePath = decodeURIComponent(u.pathname);
    user = u.username ? decodeURIComponent(u.username) : currentUser();
  } catch {
    throw new ZpumpError('E_USAGE', `${url}: malformed percent-encoding`);
  }
  if (filePath === '' || filePath.endsWith('/')) throw new ZpumpError('E_USAGE', `${url} names no file (expected sftp://user@host:port/absolute/path)`);
  const port = u.port ? Number(u.port) : 22;
  const location = `sftp://${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`;
  return { host, port, user, path: filePath, location };
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers).
    const fromEnv = process.env.USER ?? process.env.LOGNAME;
    if (fromEnv) return fromEnv;
    throw new ZpumpError('E_USAGE', 'cannot tell the current user name: put it in the URL (sftp://user@host/path)');
  }
}

// ---- connection -----------------------------------------------------------------------------

interface Session {
  client: Client;
  sftp: SFTPWrapper;
  handle: Buffer;
  readSize: number;
  /** The SFTP channel or the connection is gone: reads would never be answered. */
  closed: boolean;
  /** The connection itself is gone. */
  ended: boolean;
}

// Retry policy: ZpumpErrors are final (a reconnect cannot fix them), other errors are worth a
// reconnect. A failing consumer is neither: its error must pass through untouched.
class ConsumerError extends Error {
  constructor(readonly original: unknown) {
    super('the consumer of the data failed');
  }
}

function remoteFileError(error: unknown, target: SftpTarget, what: string): ZpumpError {
  const code = (error as { code?: unknown }).code;
  const reason = error instanceof Error ? error.message : String(error);
  const advice = code === FX_NO_SUCH_FILE ? 'no such file on the server' : code === FX_PERMISSION_DENIED ? `permission denied for ${target.user}` : reason;
  return new ZpumpError('E_IO', `${target.location}: ${what}: ${advice}`, { data: { url: target.location }, cause: error });
}

const isSftpStatus = (error: unknown): boolean => typeof (error as { code?: unknown }).code === 'number';

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => abortable(new Promise((r) => setTimeout(r, ms)), signal);

/** No answer for the whole stall timeout: the transfer is abandoned, not retried (see http.ts). */
class StallError extends Error {}

/** `promise`, or a StallError once `ms` pass without it settling. */
function withinStall<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StallError(`no answer for ${ms / 1000} s ${what}`)), ms);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error) => { clearTimeout(timer); reject(error); },
    );
  });
}

export async function createSftpSource(url: string, options: SftpOptions = {}, stallTimeoutMs = DEFAULT_STALL_TIMEOUT_MS): Promise<RangeSource> {
  const target = parseSftpUrl(url);
  const { default: ssh2 } = await import('ssh2');
  const pinned = options.hostFingerprint === undefined ? undefined : normalizeFingerprint(options.hostFingerprint);

  let privateKey: Buffer | undefined;
  let agent: string | undefined;
  if (options.privateKeyPath !== undefined) {
    try {
      privateKey = await readFile(options.privateKeyPath);
    } catch (error) {
      throw fromSystemError(error, 'cannot read the SSH key', options.privateKeyPath);
    }
    const parsed = ssh2.utils.parseKey(privateKey);
    if (parsed instanceof Error) {
      const encrypted = /passphrase|encrypted/i.test(parsed.message);
      throw new ZpumpError('E_USAGE', encrypted
        ? `SSH key ${options.privateKeyPath} is protected by a passphrase: load it into ssh-agent (ssh-add) and leave out --ssh-key`
        : `SSH key ${options.privateKeyPath} is not a private key ssh2 can use: ${parsed.message}`);
    }
  } else if (process.env.SSH_AUTH_SOCK) {
    agent = process.env.SSH_AUTH_SOCK;
  } else {
    throw new ZpumpError('E_USAGE', `${target.location}: no SSH credentials: give a private key (--ssh-key FILE) or run an ssh-agent (SSH_AUTH_SOCK)`);
  }
  const credentials = privateKey ? `key ${options.privateKeyPath}` : 'the keys in the SSH agent';

  const knownHostsPath = options.knownHostsPath ?? path.join(os.homedir(), '.ssh', 'known_hosts');
  const hostName = target.port === 22 ? target.host : `[${target.host}]:${target.port}`;
  let known: KnownHostsEntries | undefined;
  const loadKnownHosts = async (): Promise<KnownHostsEntries> => {
    if (known) return known;
    let text = '';
    try {
      text = await readFile(knownHostsPath, 'utf8');
    } catch (error) {
      // The default file may well not exist; one the user named must.
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (!missing || options.knownHostsPath !== undefined) throw fromSystemError(error, 'cannot read the known_hosts file', knownHostsPath);
    }
    known = knownHostsEntries(text, hostName);
    return known;
  };

  /** Undefined if the key is trusted, else why not. */
  const refusalReason = (blob: Buffer, entries: KnownHostsEntries): string | undefined => {
    const seen = fingerprintOf(blob);
    if (entries.revoked.some((k) => k.blob.equals(blob))) return `is marked @revoked for ${hostName} in ${knownHostsPath}`;
    if (pinned !== undefined && seen === pinned) return undefined;
    if (entries.keys.some((k) => k.blob.equals(blob))) return undefined;
    if (pinned !== undefined) return `does not match --host-fingerprint ${pinned}`;
    if (entries.keys.length > 0) return `differs from the key recorded for ${hostName} in ${knownHostsPath}: the server's key changed, or this is not the server you expect`;
    return `is not recorded for ${hostName} in ${knownHostsPath}`;
  };

  const connect = async (): Promise<Session> => {
    const entries = await loadKnownHosts();
    const preferred = preferredHostKeyAlgorithms(entries.keys);
    const client = new ssh2.Client();
    let refusal: ZpumpError | undefined;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      ...(privateKey ? { privateKey } : { agent }),
      readyTimeout: stallTimeoutMs,
      // A silently dropped connection would otherwise leave reads waiting forever.
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      ...(preferred.length > 0 ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred, append: [] } } } : {}),
      hostVerifier: (key: Buffer): boolean => {
        const reason = refusalReason(key, entries);
        if (reason === undefined) return true;
        const seen = fingerprintOf(key);
        refusal = new ZpumpError('E_NETWORK',
          `${target.location}: host key refused: the server presented ${keyTypeOf(key)} ${seen}, which ${reason}. ` +
            `If this is the right server, accept it with --host-fingerprint ${seen}, or add its key to a known_hosts file and pass --known-hosts FILE`,
          { data: { url: target.location, fingerprint: seen } });
        return false;
      },
    };
    return new Promise<Session>((resolve, reject) => {
      let settled = false;
      // ssh2's readyTimeout ends at the handshake; opening the subsystem and the file may stall too.
      let stallTimer: NodeJS.Timeout | undefined;
      const watchStall = (what: string) => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => fail(new StallError(`no answer for ${stallTimeoutMs / 1000} s ${what}`)), stallTimeoutMs);
      };
      const fail = (error: unknown) => {
        clearTimeout(stallTimer);
        if (settled) return;
        settled = true;
        if (error instanceof StallError) client.destroy();
        else client.end();
        reject(error);
      };
      watchStall('while connecting');
      client.on('error', (error: Error & { level?: string; code?: string }) => {
        if (refusal) return fail(refusal);
        if (error.level === 'client-authentication') {
          return fail(new ZpumpError('E_NETWORK', `${target.location}: the server refused ${target.user} with ${credentials}`, { data: { url: target.location }, cause: error }));
        }
        if (error.level === 'agent') {
          return fail(new ZpumpError('E_NETWORK', `${target.location}: cannot use the SSH agent at ${agent}: ${error.message}`, { data: { url: target.location }, cause: error }));
        }
        if (error.code === 'ENOTFOUND') return fail(new ZpumpError('E_NETWORK', `${target.location}: unknown host ${target.host}`, { data: { url: target.location }, cause: error }));
        if (error.level === 'client-timeout') return fail(new StallError(`no SSH handshake within ${stallTimeoutMs / 1000} s`));
        fail(error);
      });
      client.on('close', () => fail(new Error('connection closed during the SSH handshake')));
      client.once('ready', () => {
        watchStall('while opening the file');
        client.sftp((error, sftp) => {
          if (error) return fail(new ZpumpError('E_NETWORK', `${target.location}: the server refused the SFTP subsystem: ${error.message}`, { cause: error }));
          sftp.open(target.path, 'r', (openError, handle) => {
            if (openError) return fail(isSftpStatus(openError) ? remoteFileError(openError, target, 'cannot open') : openError);
            settled = true;
            clearTimeout(stallTimer);
            // ssh2 keeps the negotiated read limit private; staying under it keeps one read one request.
            const limit = (sftp as unknown as { _maxReadLen?: unknown })._maxReadLen;
            const readSize = typeof limit === 'number' && limit > 0 ? Math.min(READ_SIZE, limit) : READ_SIZE;
            const s: Session = { client, sftp, handle, readSize, closed: false, ended: false };
            client.on('close', () => { s.closed = true; s.ended = true; });
            sftp.on('close', () => { s.closed = true; });
            resolve(s);
          });
        });
      });
      try {
        client.connect(config);
      } catch (error) {
        fail(new ZpumpError('E_USAGE', `${target.location}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
      }
    });
  };

  let current: Promise<Session> | undefined;
  const session = async (): Promise<Session> => {
    const s = current && (await current.catch(() => undefined));
    if (s && !s.closed) return s;
    current = connect();
    return current;
  };
  const drop = async (stalled = false): Promise<void> => {
    const pending = current;
    current = undefined;
    const s = pending && (await pending.catch(() => undefined));
    if (!s || s.ended) return;
    // A silent server would not answer a polite goodbye either.
    if (stalled) {
      s.client.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      timer.unref();
      s.client.once('close', () => { clearTimeout(timer); resolve(); });
      s.client.end();
    });
  };

  const readAt = (s: Session, buf: Buffer, length: number, position: number): Promise<number> => {
    // ssh2 never answers requests sent on a closed channel.
    if (s.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      s.sftp.read(s.handle, buf, 0, length, position, (error, bytesRead) => {
        if (!error) return resolve(bytesRead);
        if ((error as { code?: unknown }).code === FX_EOF) return resolve(0);
        reject(isSftpStatus(error) ? remoteFileError(error, target, `read at ${position} failed`) : error);
      });
    });
  };

  return {
    location: target.location,
    async readRanges(ranges: readonly ByteRange[], onChunk: (c: RangeChunk) => void | Promise<void>, opts: ReadRangesOptions = {}): Promise<TransferStats> {
      const { signal } = opts;
      const stats: TransferStats = { requests: 0, bytesReceived: 0 };
      let delivered = 0;
      // The next byte to deliver: where a retry resumes.
      let index = 0;
      let at = ranges[0]?.start ?? 0;
      const settle = () => {
        while (index < ranges.length && at >= ranges[index]!.end) {
          index++;
          at = ranges[index]?.start ?? 0;
        }
      };
      settle();
      if (index >= ranges.length) return stats; // nothing to read is no reason to connect

      interface Piece { offset: number; length: number; buf: Buffer; result: Promise<number> }

      const pump = async (s: Session, progressed: () => void): Promise<void> => {
        // Buffers belong to one attempt: reads abandoned by a failed attempt may still land in them.
        const free: Buffer[] = [];
        const inFlight: Piece[] = [];
        let nextIndex = index;
        let nextAt = at;
        const send = (offset: number, length: number, buf: Buffer): Piece => {
          stats.requests++;
          const result = readAt(s, buf, length, offset);
          result.catch(() => undefined); // awaited in order later; an early failure must not go unhandled
          return { offset, length, buf, result };
        };
        for (;;) {
          while (inFlight.length < IN_FLIGHT && nextIndex < ranges.length) {
            const r = ranges[nextIndex]!;
            if (nextAt >= r.end) {
              nextIndex++;
              nextAt = ranges[nextIndex]?.start ?? 0;
              continue;
            }
            signal?.throwIfAborted();
            const length = Math.min(s.readSize, r.end - nextAt);
            inFlight.push(send(nextAt, length, free.pop() ?? Buffer.allocUnsafe(s.readSize)));
            nextAt += length;
          }
          const head = inFlight.shift();
          if (!head) return;
          const n = await withinStall(abortable(head.result, signal), stallTimeoutMs, `to a read at ${head.offset}`);
          stats.bytesReceived += n;
          if (n === 0) {
            throw new ZpumpError('E_IO', `${target.location}: the file ends at ${head.offset}, before the ${ranges[index]!.end} bytes the signature describes (did it change on the server?)`, { data: { url: target.location } });
          }
          try {
            await onChunk({ offset: head.offset, data: head.buf.subarray(0, n) });
          } catch (error) {
            throw new ConsumerError(error);
          }
          delivered += n;
          at = head.offset + n;
          settle();
          progressed();
          opts.onProgress?.(delivered);
          // A short read: the rest of this piece must come before anything already in flight.
          if (n < head.length) inFlight.unshift(send(head.offset + n, head.length - n, head.buf));
          else free.push(head.buf);
        }
      };

      let failures = 0;
      for (;;) {
        let progressed = false;
        try {
          signal?.throwIfAborted();
          const s = await abortable(session(), signal);
          await pump(s, () => { progressed = true; });
          return stats;
        } catch (error) {
          if (error instanceof ConsumerError) throw error.original;
          if (signal?.aborted) throw signal.reason;
          if (error instanceof ZpumpError) throw error;
          if (error instanceof StallError) {
            await drop(true);
            throw new ZpumpError('E_NETWORK', `${target.location}: stalled, ${error.message} (--stall-timeout): transfer abandoned`, { data: { url: target.location, stalled: true }, cause: error });
          }
          await drop();
          if (progressed) failures = 0; // a transfer that moved forward is not a dead server
          if (++failures > RETRIES) {
            const cause = error instanceof Error ? error.message : String(error);
            throw new ZpumpError('E_NETWORK', `${target.location}: giving up after ${RETRIES} retries: ${cause}`, { data: { url: target.location }, cause: error });
          }
          await sleep(RETRY_BASE_MS * 2 ** (failures - 1), signal);
        }
      }
    },
    async close() {
      await drop();
    },
  };
}
