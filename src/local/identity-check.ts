// Checking a finished temporary file against a message's identity before it is renamed into
// place. sha512 is usually checked on the fly by the engines; md5 (the other v03 method) costs
// one more read of the file, here.

import { ZpumpError } from '../errors.js';
import { digestFile } from './file-digest.js';

export async function verifyIdentity(path: string, identity: { method: 'sha512' | 'md5'; value: string }, target: string): Promise<void> {
  const got = await digestFile(path, { [identity.method]: true });
  if (got[identity.method] !== identity.value) {
    throw new ZpumpError('E_VERIFY', `the downloaded ${target} does not match the announced ${identity.method} identity; the target was left unchanged`);
  }
}
