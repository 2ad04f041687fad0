// The one interface both engines implement: the C tools (zsync backend) and the TypeScript
// engine (js). The api layer decides block sizes, thresholds and defaults; a backend only does
// the work it is asked and reports what it did.

import type { ControlFile } from '../format/control-file.js';
import type { OpenOptions } from '../transport/open.js';

export type EngineName = 'zsync' | 'js';
export type EngineChoice = EngineName | 'auto';

/** Set when auto tried the C tools first and they failed. */
export interface Fallback {
  from: EngineName;
  reason: string;
}

export interface MakeRequest {
  input: string;
  /** Where the .zsync goes; written atomically. */
  output: string;
  blockSize: number;
  /** URL header lines, in order (zsyncmake -u). */
  urls: string[];
  /** Filename header; zsyncmake's default is the input's basename. */
  filename: string;
  /** Set: write a format spec 0.8 file with this block hash (js engine); unset: zsyncmake 0.6.2's format. */
  strongHash?: 'MD4' | 'MD5' | 'SHA-224';
  /** Also the input's sha512 from the same read, if the engine can (js); the caller hashes it otherwise. */
  sha512?: boolean;
  onProgress?: (bytesRead: number, total: number) => void;
}

export interface MakeResult {
  engine: EngineName;
  output: string;
  length: number;
  blockSize: number;
  records: number;
  signatureBytes: number;
  sha1: string;
  /** Spec 0.8 files: "SHA-256:hex" and the block hash. */
  fileHash?: string;
  strongHash?: string;
  /** base64, when asked for and the engine read the file itself. */
  sha512?: string;
  fallback?: Fallback;
}

export interface SyncRequest {
  control: ControlFile;
  /** Where the control file came from (path or URL): the zsync client is given it. */
  controlLocation: string;
  /** Absolute data URL (http, https, file) or a local path. */
  dataUrl: string;
  /** Every URL the control file lists, resolved, in its order (dataUrl first): tried in turn when one fails. */
  dataUrls?: string[];
  target: string;
  /** Existing local files to reuse blocks from, in order (the target itself first when it exists). */
  seeds: string[];
  /** Modification time to give the result (seconds, fractions allowed); default: the control file's MTime. */
  mtime?: number;
  /** An announcement's sha512 identity (base64): checked too before the rename. */
  sha512?: string;
  /** Called with the finished, verified temporary file right before the rename (md5 identity, path re-check). */
  beforeCommit?: (tempPath: string) => Promise<void>;
  /** beforeCommit checks the message's md5 identity: the js engine then makes no whole-file check of its own. */
  md5InBeforeCommit?: boolean;
  /** CA certificates, SSH keys...: passed to the transport as they are. */
  transport?: OpenOptions;
  /** Threads scanning the seeds (js engine); default: one per core; 1: this thread only. */
  threads?: number;
  onProgress?: (phase: 'scan' | 'fetch', done: number, total: number) => void;
}

export interface SyncResult {
  engine: EngineName;
  target: string;
  length: number;
  bytesReused: number;
  /** Bytes received from the server (for the zsync client: as it reports them, headers included). */
  bytesFetched: number;
  /** HTTP requests (or reads) sent; null when the engine does not report it (the zsync client). */
  requests: number | null;
  verified: boolean;
  /** The URL the missing blocks came from (absent when none were fetched, or the zsync client did not say). */
  servedBy?: string;
  /** URLs tried before it, and why they were left. */
  failedUrls?: Array<{ url: string; reason: string }>;
  fallback?: Fallback;
  /** Bytes of signatures fetched (a two-level message's fine records and header); included in bytesFetched. */
  signatureBytes?: number;
  /** A two-level sync: the level that delivered the file, and why a finer one was left. */
  twoLevel?: TwoLevelReport;
}

export interface TwoLevelReport {
  level: 'fine' | 'coarse' | 'whole';
  coarseBlockSize: number;
  fineBlockSize: number;
  /** Fine records fetched. */
  fineRecords: number;
  /** Why the fine level (and then the coarse one) was given up. */
  problems?: string[];
}

export interface Backend {
  readonly name: EngineName;
  make(request: MakeRequest): Promise<MakeResult>;
  sync(request: SyncRequest): Promise<SyncResult>;
}
