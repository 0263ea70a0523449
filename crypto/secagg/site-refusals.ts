/**
 * The reason codes a site's refusal of a round carries to the coordinator (DESIGN.md "What a site checks
 * for itself": refusals are reason codes, never text with local values). These are the codes of the
 * site's own defences against a lying coordinator; the protocol checks of the SecAgg+ client add theirs
 * (SecAggError reasons). Defined once here so the site, the coordinator's logs and the tests that play a
 * lying coordinator agree on them.
 */
export const SITE_DEFENCE_REASONS = {
  /** RoundStart's counter is not above the highest this site accepted for the federation (replay). */
  ROUND_NOT_FRESH: 'ROUND_NOT_FRESH',
  /** Another round of this site is still running. */
  ROUND_CONCURRENT: 'ROUND_CONCURRENT',
  /** This site's input was already unmasked in an aggregate on this model hash. */
  MODEL_ALREADY_CONTRIBUTED: 'MODEL_ALREADY_CONTRIBUTED',
  /** RoundConfig's model hash is not the head of the chain of commit records this site verified. */
  MODEL_NOT_CHAIN_HEAD: 'MODEL_NOT_CHAIN_HEAD',
  /** RoundConfig's server-optimiser state hash is not the one of the verified chain head. */
  OPTIMIZER_STATE_NOT_CHAIN_HEAD: 'OPTIMIZER_STATE_NOT_CHAIN_HEAD',
  /** The site could not verify the chain of commit records back to the task's initial model. */
  CHAIN_UNVERIFIED: 'CHAIN_UNVERIFIED',
  /** A RoundCommitted without a valid quorum-signed commit record (forged, unsigned, or below this site's policy). */
  COMMIT_RECORD_INVALID: 'COMMIT_RECORD_INVALID',
  /** A stage deadline of the RoundConfig passed: the site ended the round and zeroised its secrets. */
  STAGE_DEADLINE_PASSED: 'STAGE_DEADLINE_PASSED',
  /** Any other local failure: the details stay in the site's own log. */
  SITE_ERROR: 'SITE_ERROR',
} as const;

export type SiteDefenceReason = (typeof SITE_DEFENCE_REASONS)[keyof typeof SITE_DEFENCE_REASONS];
