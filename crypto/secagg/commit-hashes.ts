/**
 * The four hashes a Commit attests (DESIGN.md step 7), checked the same way by the site that signs
 * them and by the coordinator that asks for them: 32-byte SHA-256 digests, and the previous model is the
 * one RoundConfig named (a commit cannot move a federation off the model the round started from).
 */
import { bytesEqual } from '../bytes.js';
import { SHA256_LENGTH } from '../hash.js';
import { secaggInvalid, secaggPrecondition, type SecAggErrorContext } from './errors.js';
import type { CommitHashes } from './messages.js';

/** The four attested hashes, in the order the commit transcript signs them. */
export const COMMIT_HASH_FIELDS = ['previousModelHash', 'aggregateHash', 'newModelHash', 'optimizerStateHash'] as const;

/** Throws INVALID_ARGUMENT 'MALFORMED_MESSAGE' unless every field of `hashes` is a 32-byte digest. */
export function checkCommitHashDigests(hashes: CommitHashes, what: string, context: SecAggErrorContext): void {
  for (const field of COMMIT_HASH_FIELDS) {
    const value: unknown = hashes[field];
    if (!(value instanceof Uint8Array) || value.length !== SHA256_LENGTH) {
      throw secaggInvalid('MALFORMED_MESSAGE', `${what}.${field} must be a 32-byte SHA-256 digest`, context);
    }
  }
}

/** Validated copies of `hashes`; INVALID_ARGUMENT for a malformed field, FAILED_PRECONDITION 'MODEL_HASH_MISMATCH'. */
export function checkCommitHashes(hashes: CommitHashes, modelHash: Uint8Array, what: string, context: SecAggErrorContext): CommitHashes {
  checkCommitHashDigests(hashes, what, context);
  if (!bytesEqual(hashes.previousModelHash, modelHash)) {
    throw secaggPrecondition('MODEL_HASH_MISMATCH', `${what}.previousModelHash is not the model hash of this round's RoundConfig`, context);
  }
  return {
    previousModelHash: new Uint8Array(hashes.previousModelHash),
    aggregateHash: new Uint8Array(hashes.aggregateHash),
    newModelHash: new Uint8Array(hashes.newModelHash),
    optimizerStateHash: new Uint8Array(hashes.optimizerStateHash),
  };
}

/** Whether two sets of commit hashes are identical (well-formed or not). */
export function sameCommitHashes(a: CommitHashes, b: CommitHashes): boolean {
  return COMMIT_HASH_FIELDS.every((field) => a[field] instanceof Uint8Array && b[field] instanceof Uint8Array && bytesEqual(a[field], b[field]));
}
