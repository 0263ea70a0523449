/**
 * An advisory lock for read-modify-write commands on a CA directory (two concurrent `revoke`s would
 * otherwise lose one revocation or reuse a CRL number). The lock file is created exclusively and holds
 * the owner's pid so a stale lock left by a crash can be identified and removed by hand.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrnoException } from '../platform/index.js';
import { PkiError } from './errors.js';

export const LOCK_FILE_NAME = '.lock';

export async function withDirectoryLock<T>(directory: string, work: () => Promise<T>): Promise<T> {
  const lockPath = join(directory, LOCK_FILE_NAME);
  let handle;
  try {
    handle = await open(lockPath, 'wx', 0o600);
  } catch (error) {
    if (isErrnoException(error) && error.code === 'EEXIST') {
      throw new PkiError(
        'ABORTED',
        'DIRECTORY_LOCKED',
        `another fedgate certs command is working on ${directory} (lock file ${lockPath}); retry when it finishes, or delete ${lockPath} if no such command is running`,
        { cause: error, details: { lockPath } },
      );
    }
    throw error;
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}
