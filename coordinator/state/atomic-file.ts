/**
 * Crash-safe file writes for the coordinator's state directory.
 *
 * A file is written to a temporary name in the same directory, fsynced, renamed over the target and the
 * directory is fsynced, so a reader sees either the old complete file or the new complete file, never a
 * torn one (openfl #1367 lost a federation to a half-written model). Temporary files left by a crash are
 * recognisable by their suffix and removed on the next open.
 */
import { open, rename, readdir, unlink, mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { StateError } from './state-error.js';

const TEMP_MARKER = '.tmp-';

export interface AtomicWriteOptions {
  /** File mode of the new file, e.g. 0o600 for secrets. @default 0o644 */
  readonly mode?: number;
  /** Runs after the temporary file is durable and before it replaces the target (crash tests). */
  readonly beforeRename?: () => void;
}

/** Writes `data` to `path` atomically and durably (temp file + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const directory = dirname(path);
  const temporary = join(directory, `${basename(path)}${TEMP_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await open(temporary, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temporary).catch(() => undefined);
    throw new StateError('io_failed', `could not write ${path}: ${describe(error)}`, { cause: error });
  }
  await handle.close();
  options.beforeRename?.();
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new StateError('io_failed', `could not move ${temporary} over ${path}: ${describe(error)}`, { cause: error });
  }
  await syncDirectory(directory);
}

/** Makes a rename or file creation in `directory` durable. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `directory` (and parents) and removes temporary files a crashed writer left behind. */
export async function prepareDirectory(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const name of await readdir(directory)) {
    if (name.includes(TEMP_MARKER)) await unlink(join(directory, name)).catch(() => undefined);
  }
}

/** Reads a file, or returns undefined when it does not exist. Other errors propagate with the path. */
export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateError('io_failed', `could not read ${path}: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
