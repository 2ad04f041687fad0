// The one decision on whether a URL taken from a message may be fetched. A message comes from a
// network: its baseUrl, retrievePath, zsync.retrievePath (later the fine signature and WIS2 links)
// are an attacker's to choose, so each is checked here, and nowhere else, before anything is read:
// an allowed scheme (file: only when the operator said so), and a relative path that, once
// resolved and percent-decoded, stays under baseUrl's folder. Pure: strings in, a URL or a
// ZpumpError out.

import { ZpumpError } from '../errors.js';
import type { ControlFile } from './control-file.js';

/** What a subscriber fetches from when the operator says nothing else. */
export const DEFAULT_SCHEMES: readonly string[] = ['http', 'https', 'sftp'];
/** Everything zpump can read: `sync` run by hand on an announcement the operator chose. */
export const ALL_SCHEMES: readonly string[] = ['http', 'https', 'sftp', 'file'];

/**
 * The largest signature a message may reference (zsync.size): equal to the largest .zsync zpump
 * reads from disk (local/control-file-io MAX_CONTROL_FILE_BYTES). Checked before any buffer is
 * made, and every read of a referenced signature stops there whatever the server sends.
 */
export const MAX_REFERENCED_SIGNATURE_BYTES = 256 << 20;

export interface UrlRules {
  /** Allowed schemes, lower case, without the colon. */
  schemes: readonly string[];
}

const refuse = (message: string): ZpumpError => new ZpumpError('E_BAD_MESSAGE', `bad announcement: ${message}`);

const show = (text: string): string => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);

const hasScheme = (text: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(text);
// A path in a message is a URL only in the scheme://… form: "a:b.nc" stays a file name.
const isAbsoluteUrl = (text: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(text);

function schemeAllowed(url: URL, rules: UrlRules, what: string): void {
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (!rules.schemes.includes(scheme)) {
    throw refuse(
      `${what} ${show(url.href)}: the ${scheme}: scheme is not allowed here (allowed: ${rules.schemes.join(', ')}${scheme === 'file' ? '; --allow-file accepts file: URLs' : ''})`,
    );
  }
}

/** A URL's path segments, percent-decoded; refused when decoding reveals a dot segment or a separator. */
function decodedSegments(url: URL, what: string): string[] {
  return url.pathname.split('/').map((raw) => {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw refuse(`${what} ${show(url.href)} has a malformed %-escape`);
    }
    // An escaped "..", "/" or "\" would be undone by a server or by the local file system after
    // our prefix check: refuse instead of trusting that nobody decodes twice.
    if (segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) throw refuse(`${what} ${show(url.href)} escapes its folder once decoded`);
    return segment;
  });
}

/** baseUrl of a message as a folder URL (a trailing / added), checked: a URL with an allowed scheme. */
export function baseFolderOf(baseUrl: string, rules: UrlRules): URL {
  if (!hasScheme(baseUrl)) throw refuse(`baseUrl ${show(baseUrl)} is not a URL`);
  let base: URL;
  try {
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch {
    throw refuse(`baseUrl ${show(baseUrl)} is not a URL`);
  }
  schemeAllowed(base, rules, 'baseUrl');
  if (base.search || base.hash) throw refuse(`baseUrl ${show(baseUrl)} carries a query or fragment`);
  decodedSegments(base, 'baseUrl');
  return base;
}

/**
 * THE check for a URL named by a message (exported for every kind of message: v03 announcements
 * here, WIS2 notification links later). Returns the absolute URL to fetch, or throws E_BAD_MESSAGE.
 *
 * - `path` relative (relPath, retrievePath, zsync.retrievePath, a fine signature's path): taken as
 *   a file path below `baseUrl`, each segment percent-encoded as a literal name (so "%2e%2e" is a
 *   file called %2e%2e, never a parent), then resolved against baseUrl's folder.
 * - `path` an absolute URL (a WNM link, a retrievePath written as a URL): taken as it is.
 * Either way the result must use an allowed scheme and, when `baseUrl` is given, have baseUrl's
 * scheme, host and port and a path under baseUrl's folder after percent-decoding, with no ".",
 * "..", "/" or "\" hidden in an escaped segment. Without `baseUrl` (WNM links have none) only the
 * scheme and the decoded segments are checked.
 */
export function fetchableUrl(path: string, rules: UrlRules & { baseUrl?: string; what?: string }): string {
  const what = rules.what ?? 'URL';
  if (path.includes('\0')) throw refuse(`${what} contains a NUL byte`);
  const base = rules.baseUrl === undefined ? undefined : baseFolderOf(rules.baseUrl, rules);
  let url: URL;
  if (isAbsoluteUrl(path)) {
    try {
      url = new URL(path);
    } catch {
      throw refuse(`${what} ${show(path)} is not a URL`);
    }
  } else {
    if (!base) throw refuse(`${what} ${show(path)} is relative and there is no baseUrl to resolve it against`);
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..') || path.includes('\\')) throw refuse(`${what} ${show(path)} leaves baseUrl's folder`);
    if (parts.length === 0) throw refuse(`${what} ${show(path)} names no file`);
    // Names are taken literally, but one that a server or proxy decoding once more would read as a
    // parent ("%2e%2e", "..%2f") is refused rather than trusted to stay literal.
    if (parts.some((p) => /%2e|%2f|%5c/i.test(p) && /^(%2e|\.){1,2}$|%2f|%5c/i.test(p))) throw refuse(`${what} ${show(path)} hides a parent folder or separator in %-escapes`);
    url = new URL(parts.map(encodeURIComponent).join('/'), base);
  }
  schemeAllowed(url, rules, what);
  decodedSegments(url, what);
  if (base) {
    const sameServer = url.protocol === base.protocol && url.host === base.host && url.username === base.username;
    if (!sameServer || !url.pathname.startsWith(base.pathname) || url.pathname === base.pathname) {
      throw refuse(`${what} ${show(url.href)} is not under baseUrl ${show(base.href)}`);
    }
  }
  return url.href;
}

/** A size a message gives for something zpump reads into memory: a whole number, at most `max`. */
export function cappedSize(size: unknown, max: number, what: string): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw refuse(`${what} must be a whole number of bytes`);
  if (size > max) throw refuse(`${what} is ${size} bytes, more than zpump reads into memory (${max})`);
  return size;
}

/**
 * A message's data is at baseUrl + retrievePath, checked above. A gzip-inside signature names
 * other data in its own Z-URL: lines, which the zsync client would fetch as they are: from any
 * host or folder, past this policy. So such a signature is refused in every message, inline or
 * referenced (zpump never publishes one).
 */
export function refuseGzipInside(control: Pick<ControlFile, 'gzip'>, relPath: string): void {
  if (control.gzip) throw refuse(`the signature of ${show(relPath)} describes gzip-inside data (Z-URL: lines); a message's signature must describe the file at its data URL`);
}
