// SSH host keys: fingerprints as ssh-keygen prints them, and OpenSSH known_hosts lookups (plain
// and hashed names, wildcards, negation, @revoked), for the SFTP transport's host check.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerHostKeyAlgorithm } from 'ssh2';
import { ZpumpError } from '../errors.js';

/** `SHA256:` and unpadded base64, as `ssh-keygen -l` prints it. */
export function fingerprintOf(keyBlob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export function normalizeFingerprint(text: string): string {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text.trim());
  if (!m) throw new ZpumpError('E_USAGE', `host fingerprint ${JSON.stringify(text)} is not of the form SHA256:<43 base64 characters> (as ssh-keygen -l -f KEY.pub prints it)`);
  return `SHA256:${m[1]}`;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Uint8Array): string {
  if (blob.length < 4) return 'unknown';
  const n = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(0);
  return n > 0 && n <= 64 && 4 + n <= blob.length ? Buffer.from(blob.subarray(4, 4 + n)).toString('latin1') : 'unknown';
}

export interface KnownKey {
  type: string;
  blob: Buffer;
}

export interface KnownHostsEntries {
  keys: KnownKey[];
  revoked: KnownKey[];
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedNameMatches(field: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name)), what HashKnownHosts writes.
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedNameMatches(field, name);
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern === '') continue;
    const negated = pattern.startsWith('!');
    if (!globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) continue;
    if (negated) return false; // a negated match wins over any positive one
    matched = true;
  }
  return matched;
}

/** The keys a known_hosts text records for `name` (host, or [host]:port off port 22). */
export function knownHostsEntries(text: string, name: string): KnownHostsEntries {
  const found: KnownHostsEntries = { keys: [], revoked: [] };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (marker === '@cert-authority') continue; // host certificates are not supported
    const [hosts, type, base64] = fields;
    if (hosts === undefined || type === undefined || base64 === undefined) continue;
    if (!hostFieldMatches(hosts, name)) continue;
    const key = { type, blob: Buffer.from(base64, 'base64') };
    (marker === '@revoked' ? found.revoked : found.keys).push(key);
  }
  return found;
}

// ssh2 negotiates one host key algorithm; prefer those known_hosts has keys for, as ssh does,
// so a server with several host keys shows the one the user already trusts.
const ALGORITHMS_FOR_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

export function preferredHostKeyAlgorithms(keys: readonly KnownKey[]): ServerHostKeyAlgorithm[] {
  const out: ServerHostKeyAlgorithm[] = [];
  for (const k of keys) for (const a of ALGORITHMS_FOR_KEY_TYPE[k.type] ?? []) if (!out.includes(a)) out.push(a);
  return out;
}
