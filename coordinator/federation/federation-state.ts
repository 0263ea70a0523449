/**
 * The coordinator's durable view of the federation between rounds: which model and server-optimiser state
 * are current, how many rounds committed, and the sampling seed. The ledger is the source of truth for
 * committed rounds: this file is rewritten (atomically) after each ledger append, and on start-up a
 * ledger that is ahead of it (a crash between the two writes) wins.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { StateError } from '../state/state-error.js';

export const FEDERATION_STATE_FORMAT_VERSION = 1;
const FILE_NAME = 'federation.json';

export interface FederationState {
  readonly formatVersion: number;
  readonly federationId: string;
  readonly taskHash: string;
  /** Rounds committed so far (= ledger length). */
  readonly committedRounds: number;
  readonly modelHash: string;
  readonly optimizerStateHash: string;
  /** Hex; seeds participant sampling together with the round counter. */
  readonly samplingSeed: string;
}

export async function readFederationState(stateDirectory: string): Promise<FederationState | undefined> {
  const path = join(stateDirectory, FILE_NAME);
  const raw = await readFileIfExists(path);
  if (raw === undefined) return undefined;
  let value: Partial<FederationState>;
  try {
    value = JSON.parse(raw.toString('utf8')) as Partial<FederationState>;
  } catch (error) {
    throw new StateError('CORRUPT', `${path} is not valid JSON; restore the state directory from a backup`, { cause: error });
  }
  if (value.formatVersion !== FEDERATION_STATE_FORMAT_VERSION) {
    throw new StateError('UNSUPPORTED_VERSION', `${path}: format version ${String(value.formatVersion)}, this fedgate reads ${FEDERATION_STATE_FORMAT_VERSION}`);
  }
  for (const key of ['federationId', 'taskHash', 'modelHash', 'optimizerStateHash', 'samplingSeed'] as const) {
    if (typeof value[key] !== 'string') throw new StateError('CORRUPT', `${path}: "${key}" must be a string`);
  }
  if (!Number.isSafeInteger(value.committedRounds) || (value.committedRounds ?? -1) < 0) {
    throw new StateError('CORRUPT', `${path}: "committedRounds" must be a non-negative integer`);
  }
  return value as FederationState;
}

export async function writeFederationState(stateDirectory: string, state: FederationState): Promise<void> {
  await writeFileAtomic(join(stateDirectory, FILE_NAME), JSON.stringify(state, null, 1) + '\n');
}

export function newSamplingSeed(): string {
  return randomBytes(32).toString('hex');
}
