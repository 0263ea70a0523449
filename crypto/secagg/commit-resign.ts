/**
 * One contribution per model, site side (DESIGN.md step 7): a round whose aggregate was unmasked is
 * finished, never re-run, so a coordinator short of commit signatures asks U3 again for the same round -
 * also members that lost their connection (and with it their round state) in between. What a member
 * needs to sign then is public: the RoundConfig, H(L) and U3 it agreed to, and the hashes it recomputes
 * itself from the broadcast aggregate. Nothing secret is kept; the commit transcript is the one the live
 * client signs (transcript.ts), so both signatures verify the same way.
 *
 * A site signs one commit per round: once it signed hashes for a round (here or in the live client),
 * it refuses any other hashes for that round.
 */
import type { KeyObject } from 'node:crypto';
import { bytesEqual, toHex } from '../bytes.js';
import { signMessage } from '../signature.js';
import { COMMIT_HASH_FIELDS, checkCommitHashDigests, checkCommitHashes, sameCommitHashes } from './commit-hashes.js';
import type { RoundConfig } from './config.js';
import { secaggInvalid, secaggPrecondition } from './errors.js';
import { sortSiteIds } from '../graph.js';
import type { CommitHashes, CommitRequestMessage, CommitSignatureMessage } from './messages.js';
import { commitTranscript, roundContext } from './transcript.js';

/** The public context of a round this site unmasked in: enough to sign its commit later. */
export interface UnmaskedRound {
  readonly siteId: string;
  readonly config: RoundConfig;
  /** H(L) this site signed. */
  readonly keyListHash: Uint8Array;
  /** U3 this site signed, in id order. */
  readonly maskedSurvivors: readonly string[];
}

export function unmaskedRound(siteId: string, config: RoundConfig, keyListHash: Uint8Array, maskedSurvivors: Iterable<string>): UnmaskedRound {
  return { siteId, config, keyListHash: new Uint8Array(keyListHash), maskedSurvivors: sortSiteIds(maskedSurvivors) };
}

/**
 * Signs the commit `request` for `round` when it names exactly the hashes this site `computed` (and the
 * round's model as the previous one), and when this site signed no other hashes for the round
 * (`alreadySigned`). Throws SecAggError: INVALID_ARGUMENT 'WRONG_ROUND' / 'MALFORMED_MESSAGE',
 * FAILED_PRECONDITION 'NOT_A_SURVIVOR', 'MODEL_HASH_MISMATCH', 'COMMIT_MISMATCH', 'CONFLICTING_COMMIT'.
 */
export function signUnmaskedRoundCommit(
  round: UnmaskedRound,
  request: CommitRequestMessage,
  computed: CommitHashes,
  signingKey: KeyObject,
  alreadySigned?: CommitHashes,
): CommitSignatureMessage {
  const where = { stage: 'commit', site: round.siteId };
  if (!(request.roundId instanceof Uint8Array) || !bytesEqual(request.roundId, round.config.roundId)) {
    throw secaggInvalid('WRONG_ROUND', 'the commit request is for another round than the one this site unmasked in', where);
  }
  if (!round.maskedSurvivors.includes(round.siteId)) throw secaggPrecondition('NOT_A_SURVIVOR', 'this site is not in the U3 it signed for this round', where);
  const hashes = checkCommitHashes(request, round.config.modelHash, 'commit_request', where);
  checkCommitHashDigests(computed, 'computed', where);
  const differing = COMMIT_HASH_FIELDS.find((field) => !bytesEqual(hashes[field], computed[field]));
  if (differing !== undefined) {
    throw secaggPrecondition('COMMIT_MISMATCH', `commit_request.${differing} is ${toHex(hashes[differing])} but this site computed ${toHex(computed[differing])}`, where);
  }
  if (alreadySigned !== undefined && !sameCommitHashes(alreadySigned, hashes)) {
    throw secaggPrecondition('CONFLICTING_COMMIT', 'this site already signed a different commit in this round', where);
  }
  const transcript = commitTranscript(roundContext(round.config), round.keyListHash, hashes, round.maskedSurvivors);
  return { stage: 'commit', roundId: round.config.roundId, ...hashes, signature: signMessage(signingKey, transcript) };
}
