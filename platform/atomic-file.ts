/**
 * Crash-safe file replacement, the one implementation for the coordinator's state directory, the CA
 * directory, a site's files and the CLI's outputs.
 *
 * A file is written to a temporary name in the same directory, fsynced, renamed over the target (POSIX
 * rename(2) is atomic within one file system) and the directory is fsynced (otherwise the rename itself
 * may stay in the page cache). A reader sees either the old complete file or the new complete file, never
 * a torn one (openfl #1367 lost a federation to a half-written model). A temporary file left by a crash
 * is recognisable by its marker and removed by `prepareDirectory` on the next open.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FedgateError } from './errors.js';

const TEMP_MARKER = '.tmp-';
/** Mode of a new file when the caller names none; the process umask still applies to it. */
const DEFAULT_FILE_MODE = 0o644;

export interface AtomicWriteOptions {
  /**
   * Exact mode of the new file, e.g. 0o600 for a private key: the file is created with it (never
   * readable by others, even briefly) and then set to it, whatever the umask. @default 0o644 less the umask
   */
  readonly mode?: number;
  /**
   * Runs after the temporary file is durable and before it replaces the target (crash tests kill the
   * process here). If it throws, the temporary file is removed, the target is left as it was and the
   * hook's error propagates.
   */
  readonly beforeRename?: () => void;
}

/**
 * Writes `data` to `path` atomically and durably (temp file + fsync + rename + directory fsync).
 * A failing write, fsync or rename removes the temporary file, leaves the target as it was and throws
 * an INTERNAL FedgateError (reason IO_FAILED) naming the path: the peer of a service learns nothing about
 * local files, the operator's log has the cause.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const directory = dirname(path);
  const temporary = join(directory, `${basename(path)}${TEMP_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`);
  let handle;
  try {
    // 'wx' creates exclusively, with the mode from the start.
    handle = await open(temporary, 'wx', options.mode ?? DEFAULT_FILE_MODE);
  } catch (error) {
    throw ioFailed(`could not create ${temporary}`, path, error);
  }
  try {
    try {
      await handle.writeFile(data);
      if (options.mode !== undefined) await handle.chmod(options.mode); // the umask may have cleared bits
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await removeQuietly(temporary);
    throw ioFailed(`could not write ${path}`, path, error);
  }
  try {
    options.beforeRename?.();
  } catch (error) {
    await removeQuietly(temporary);
    throw error;
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await removeQuietly(temporary);
    throw ioFailed(`could not move ${temporary} over ${path}`, path, error);
  }
  await syncDirectory(directory);
}

/** Makes a rename or file creation in `directory` durable. */
export async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, 'r');
  } catch (error) {
    throw ioFailed(`could not open directory ${directory} to sync it`, directory, error);
  }
  try {
    await handle.sync();
  } catch (error) {
    throw ioFailed(`could not sync directory ${directory}`, directory, error);
  } finally {
    await handle.close();
  }
}

/**
 * The temporary files a writer of `path` left behind when it died after writing and before renaming,
 * with their contents, newest name first. A crash may have torn a file that was not yet fsynced: only a
 * caller that can check the content (a hash-chained record, say) may complete such a write with
 * `completeLeftoverWrite`; everything else is removed by `prepareDirectory`.
 */
export async function leftoverWrites(path: string): Promise<{ readonly temporary: string; readonly content: Buffer }[]> {
  const directory = dirname(path);
  const prefix = `${basename(path)}${TEMP_MARKER}`;
  let names: string[];
  try {
    names = (await readdir(directory)).filter((name) => name.startsWith(prefix)).sort().reverse();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioFailed(`could not list ${directory}`, directory, error);
  }
  const leftovers: { temporary: string; content: Buffer }[] = [];
  for (const name of names) {
    const temporary = join(directory, name);
    const content = await readFileIfExists(temporary);
    if (content !== undefined) leftovers.push({ temporary, content });
  }
  return leftovers;
}

/** Completes a write `leftoverWrites` found (and the caller checked): fsync, rename, directory fsync. */
export async function completeLeftoverWrite(temporary: string, path: string): Promise<void> {
  try {
    const handle = await open(temporary, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    throw ioFailed(`could not move ${temporary} over ${path}`, path, error);
  }
  await syncDirectory(dirname(path));
}

/** Creates `directory` (and parents) and removes temporary files a crashed writer left behind. */
export async function prepareDirectory(directory: string, options: { readonly keep?: (name: string) => boolean } = {}): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const name of await readdir(directory)) {
    if (name.includes(TEMP_MARKER) && options.keep?.(name) !== true) await removeQuietly(join(directory, name));
  }
}

/** Reads a file, or returns undefined when it does not exist. Other failures throw IO_FAILED with the path. */
export async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioFailed(`could not read ${path}`, path, error);
  }
}

function ioFailed(what: string, path: string, cause: unknown): FedgateError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new FedgateError('INTERNAL', `${what}: ${why}`, { reason: 'IO_FAILED', cause, details: { path } });
}

async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
