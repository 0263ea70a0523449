/**
 * Round ids (DESIGN.md "The round id"): an 8-byte big-endian counter persisted with fsync *before* the id
 * is used, followed by 128 random bits. A crash can skip a counter value but never reuse one, and the
 * random part keeps ids unique even if a state directory were restored from an old backup.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { StateError } from './state-error.js';

export const ROUND_COUNTER_FORMAT_VERSION = 1;
const FILE_NAME = 'round-counter.json';

export interface RoundId {
  /** The persisted counter value this id was allocated from. */
  readonly counter: bigint;
  /** counter (8 bytes, big-endian) || 16 random bytes. */
  readonly bytes: Uint8Array;
}

export class RoundCounter {
  private constructor(
    private readonly path: string,
    private next: bigint,
  ) {}

  static async open(stateDirectory: string): Promise<RoundCounter> {
    const path = join(stateDirectory, FILE_NAME);
    const raw = await readFileIfExists(path);
    if (raw === undefined) return new RoundCounter(path, 1n);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new StateError('CORRUPT', `${path} is not valid JSON; restore it from a backup or remove it only if no round was ever run`, { cause: error });
    }
    const record = parsed as { formatVersion?: unknown; next?: unknown };
    if (record.formatVersion !== ROUND_COUNTER_FORMAT_VERSION) {
      throw new StateError('UNSUPPORTED_VERSION', `${path} has format version ${String(record.formatVersion)}, this fedgate reads version ${ROUND_COUNTER_FORMAT_VERSION}`);
    }
    if (typeof record.next !== 'string' || !/^[1-9][0-9]*$/.test(record.next)) {
      throw new StateError('CORRUPT', `${path}: "next" must be a positive decimal string, got ${JSON.stringify(record.next)}`);
    }
    return new RoundCounter(path, BigInt(record.next));
  }

  /** Allocates the next round id; the counter is durable on disk before this resolves. */
  async allocate(): Promise<RoundId> {
    const counter = this.next;
    const following = counter + 1n;
    await writeFileAtomic(this.path, JSON.stringify({ formatVersion: ROUND_COUNTER_FORMAT_VERSION, next: following.toString() }) + '\n');
    this.next = following;
    const bytes = new Uint8Array(24);
    new DataView(bytes.buffer).setBigUint64(0, counter, false);
    bytes.set(randomBytes(16), 8);
    return { counter, bytes };
  }

  /** The counter value the next allocation will use. */
  peek(): bigint {
    return this.next;
  }
}
