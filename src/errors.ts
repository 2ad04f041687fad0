// One error type for the whole tool. Codes are strings so logs and --json stay readable;
// exitCodeFor() is the single table from code to process exit status (DESIGN.md: 1 = the work
// failed, 2 = bad usage or bad input).

export const errorCodes = {
  E_USAGE: 2, // bad flags or arguments
  E_BAD_INPUT: 2, // an input file that cannot be used (missing, unreadable, wrong kind)
  E_BAD_CONTROL: 2, // a .zsync control file that is malformed or out of bounds
  E_UNSUPPORTED: 2, // well-formed input this engine cannot handle (gzip-inside, scheme)
  E_BAD_MESSAGE: 2, // an announcement that fails validation
  E_UNSAFE_PATH: 2, // a relPath that would escape the subscriber's tree
  E_IO: 1, // local read/write failure
  E_HTTP: 1, // the server answered with an error status
  E_NETWORK: 1, // connection refused, reset, timed out
  E_VERIFY: 1, // a block or the whole file failed its checksum
  E_BACKEND: 1, // the C tools failed in a way we could not map more precisely
  E_BUS: 1, // broker or spool failure
  E_INTERNAL: 1, // a bug in zpump
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class ZpumpError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { data?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.data = options.data ?? {};
    Object.defineProperty(this, 'name', { value: 'ZpumpError', enumerable: false });
  }

  toJSON(): Record<string, unknown> {
    const cause = this.cause instanceof Error ? this.cause.message : this.cause;
    return { error: this.code, message: this.message, ...this.data, ...(cause === undefined ? {} : { cause }) };
  }
}

export function isZpumpError(value: unknown): value is ZpumpError {
  return value instanceof ZpumpError;
}

export function exitCodeFor(error: unknown): 1 | 2 {
  return isZpumpError(error) ? errorCodes[error.code] : 1;
}

// Node's system errors carry a code such as ENOENT; turn them into our vocabulary once, at the
// layer that touched the file, with the path in the message.
export function fromSystemError(error: unknown, what: string, path: string): ZpumpError {
  if (isZpumpError(error)) return error;
  const sys = error as NodeJS.ErrnoException;
  const reason = sys?.code ?? (error instanceof Error ? error.message : String(error));
  if (sys?.code === 'ENOENT') return new ZpumpError('E_BAD_INPUT', `${what}: ${path} does not exist`, { data: { path }, cause: error });
  if (sys?.code === 'EISDIR') return new ZpumpError('E_BAD_INPUT', `${what}: ${path} is a directory`, { data: { path }, cause: error });
  if (sys?.code === 'EACCES' || sys?.code === 'EPERM') {
    return new ZpumpError('E_IO', `${what}: permission denied on ${path}`, { data: { path }, cause: error });
  }
  if (sys?.code === 'ENOSPC' || sys?.code === 'EDQUOT') {
    return new ZpumpError('E_IO', `${what}: no space left on the device (or quota) holding ${path}`, { data: { path }, cause: error });
  }
  return new ZpumpError('E_IO', `${what}: ${path}: ${reason}`, { data: { path }, cause: error });
}
