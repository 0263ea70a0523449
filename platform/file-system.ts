/** Small file-system helpers shared by every folder that keeps files (the CA directory, state, bundles). */
import { chmod, mkdir, stat } from 'node:fs/promises';
import { FedgateError } from './errors.js';

/** Mode for private keys and the directories holding them. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIRECTORY_MODE = 0o700;
export const PUBLIC_FILE_MODE = 0o644;

/** mkdir -p, then force the mode (mkdir's mode is filtered by the umask and ignored for existing dirs). */
export async function ensureDirectory(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return false;
    throw error;
  }
}

/** A Node system error ('ENOENT', 'EEXIST' ...): its `code` is an errno name, not a FedgateError's status name. */
export function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && !(error instanceof FedgateError) && typeof (error as NodeJS.ErrnoException).code === 'string';
}
