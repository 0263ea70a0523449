/**
 * Model versions by content hash: `models/<sha256 hex>.bin`. The file name is the SHA-256 of the file's
 * bytes, so a read verifies itself and a torn or tampered file is reported, never used.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../../crypto/hash.js';
import { prepareDirectory, readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { StateError } from './state-error.js';

const HASH_PATTERN = /^[0-9a-f]{64}$/;

export class ModelStore {
  private constructor(private readonly directory: string) {}

  static async open(stateDirectory: string): Promise<ModelStore> {
    const directory = join(stateDirectory, 'models');
    await prepareDirectory(directory);
    return new ModelStore(directory);
  }

  /**
   * The store of a state directory that something else may be writing to (a running coordinator, a
   * backup in progress): reads only, and leaves its temporary files alone. For offline readers
   * (`fedgate export --state`).
   */
  static async openReadOnly(stateDirectory: string): Promise<Pick<ModelStore, 'get' | 'has'>> {
    const directory = join(stateDirectory, 'models');
    try {
      await access(directory);
    } catch {
      throw new StateError('NOT_FOUND', `${stateDirectory} has no models/ directory: is it a coordinator's state_dir?`);
    }
    return new ModelStore(directory);
  }

  /** Stores `bytes` and returns their SHA-256 (hex). Storing the same bytes twice is a no-op. */
  async put(bytes: Uint8Array): Promise<string> {
    const hash = sha256Hex(bytes);
    const path = this.pathOf(hash);
    if ((await readFileIfExists(path)) === undefined) await writeFileAtomic(path, bytes);
    return hash;
  }

  /** Reads the model with this hash; throws StateError 'NOT_FOUND' or 'CORRUPT'. */
  async get(hash: string): Promise<Buffer> {
    const path = this.pathOf(hash);
    const bytes = await readFileIfExists(path);
    if (bytes === undefined) throw new StateError('NOT_FOUND', `no model ${hash} in ${this.directory}`);
    const actual = sha256Hex(bytes);
    if (actual !== hash) {
      throw new StateError('CORRUPT', `${path} is damaged: its SHA-256 is ${actual}; restore the state directory from a backup`);
    }
    return bytes;
  }

  async has(hash: string): Promise<boolean> {
    return (await readFileIfExists(this.pathOf(hash))) !== undefined;
  }

  private pathOf(hash: string): string {
    if (!HASH_PATTERN.test(hash)) {
      throw new StateError('NOT_FOUND', `model hash must be 64 lower-case hex characters, got ${JSON.stringify(hash)}`);
    }
    return join(this.directory, `${hash}.bin`);
  }
}
