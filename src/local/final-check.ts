// The one whole-file check a rebuilt file gets before the rename. A message's sha512 identity
// names exactly the file the publisher announced, so when there is one it is the check: the
// control file's SHA-1 (or File-Hash) would only hash every byte a second time. Without an
// identity (a plain .zsync), the control file's own hashes are the check. An md5 identity is
// checked the same way, by whoever asked for it (api's beforeCommit).

import type { WholeFileChecks } from '../format/control-file.js';
import type { Hashing } from './output-file.js';

export interface FinalCheck {
  /** What OutputFile hashes while the file is written. */
  hashing: Hashing;
  /** What OutputFile.commit compares. */
  expected: { sha1?: string; sha256?: string; sha512Base64?: string };
  /** A whole-file check is made (the result is "verified"). */
  verified: boolean;
}

export function finalCheck(checks: WholeFileChecks, sha512?: string, md5InBeforeCommit = false): FinalCheck {
  if (sha512 !== undefined) return { hashing: { sha512: true }, expected: { sha512Base64: sha512 }, verified: true };
  // An md5 identity is checked by the caller's beforeCommit, in one read of the finished file.
  if (md5InBeforeCommit) return { hashing: {}, expected: {}, verified: true };
  return {
    hashing: { sha1: checks.sha1 !== undefined, sha256: checks.sha256 !== undefined },
    expected: { sha1: checks.sha1, sha256: checks.sha256 },
    verified: checks.sha1 !== undefined || checks.sha256 !== undefined,
  };
}
