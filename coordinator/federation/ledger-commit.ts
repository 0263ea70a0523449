/**
 * A ledger record's body read back as the commit it records (crypto/secagg/commit-record-codec.ts): the
 * coordinator's own state, so a body that does not parse is a damaged state directory (StateError
 * CORRUPT naming the record), not a peer's malformed message.
 */
import { SecAggError } from '../../crypto/secagg/errors.js';
import { parseCommitBody, type ParsedCommit } from '../../crypto/secagg/commit-record-codec.js';
import type { JsonValue } from '../state/canonical-json.js';
import { StateError } from '../state/state-error.js';

export function parseLedgerCommit(value: JsonValue, where: string): ParsedCommit {
  try {
    return parseCommitBody(value, where);
  } catch (error) {
    if (error instanceof SecAggError) throw new StateError('CORRUPT', `${error.message}; restore the state directory from a backup`, { cause: error });
    throw error;
  }
}
