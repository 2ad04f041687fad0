// Picks the transport for a data URL.

import { ZpumpError } from '../errors.js';
import { createFileSource } from './file.js';
import type { RangeSource } from './types.js';

export interface OpenOptions {
  ca?: string;
}

export async function openRangeSource(url: string, options: OpenOptions = {}): Promise<RangeSource> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') return createFileSource(url);
  if (scheme === 'http' || scheme === 'https') {
    const { createHttpSource } = await import('./http.js');
    return createHttpSource(url, options);
  }
  if (scheme === 'sftp') throw new ZpumpError('E_UNSUPPORTED', `sftp data URLs are not supported yet (${url})`);
  throw new ZpumpError('E_UNSUPPORTED', `cannot fetch data over ${scheme}: (supported: http, https, file, local paths)`);
}
