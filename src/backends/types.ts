// The one interface both engines implement: the C tools (zsync backend) and the TypeScript
// engine (js). The api layer decides block sizes, thresholds and defaults; a backend only does
// the work it is asked and reports what it did.

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
  fallback?: Fallback;
}

export interface Backend {
  readonly name: EngineName;
  make(request: MakeRequest): Promise<MakeResult>;
}
