// Reading and writing .zsync files on disk. Writes go through a temporary file that is parsed
// back before it replaces the target, so a crash or a broken zsyncmake never leaves a bad
// or half-written .zsync in place.

import { readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ZpumpError, fromSystemError } from '../errors.js';
import { parseControlFile, type ControlFile } from '../format/control-file.js';
import { createTempFile } from './atomic-file.js';

export const MAX_CONTROL_FILE_BYTES = 256 << 20;

/** Let `fill` write the temp file (through the handle, or by its path); verify; rename over `target`. */
export async function writeVerifiedControlFile(target: string, fill: (handle: FileHandle, path: string) => Promise<void>): Promise<ControlFile> {
  const temp = await createTempFile(target);
  try {
    await fill(temp.handle, temp.path);
    await temp.handle.sync().catch(() => undefined);
    const cf = parseControlFile(await readFile(temp.path));
    await temp.commit();
    return cf;
  } catch (error) {
    await temp.discard();
    throw error;
  }
}

export async function readControlFile(path: string): Promise<{ bytes: Uint8Array; control: ControlFile }> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw fromSystemError(error, 'cannot read the control file', path);
  }
  if (size > MAX_CONTROL_FILE_BYTES) {
    throw new ZpumpError('E_BAD_CONTROL', `bad control file: ${path} is ${size} bytes, more than any .zsync zpump accepts (${MAX_CONTROL_FILE_BYTES})`, { data: { path } });
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw fromSystemError(error, 'cannot read the control file', path);
  }
  try {
    return { bytes, control: parseControlFile(bytes) };
  } catch (error) {
    if (error instanceof ZpumpError) error.message = `${path}: ${error.message}`;
    throw error;
  }
}
