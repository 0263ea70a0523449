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
  /**
   * This site's evaluation of this model hash was already unmasked (an evaluation-only round, or a round
   * that trained and evaluated on it): it reports the metrics of one model at most once.
   */
  MODEL_ALREADY_EVALUATED: 'MODEL_ALREADY_EVALUATED',
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
  /**
   * The site's local data failed validation after it changed on disk: the site sits rounds out until its
   * operator fixes the files. The code says only that; which file, row or column stays in the site's log.
   */
  SITE_DATA_INVALID: 'SITE_DATA_INVALID',
  /**
   * Training this round would take the record-level privacy this site has spent on its data above its
   * budget (site.yaml privacy): the site charges nothing and trains nothing for it.
   */
  PRIVACY_BUDGET_EXCEEDED: 'PRIVACY_BUDGET_EXCEEDED',
  /** This round id was already charged to the site's privacy budget: a re-sent round gets no second training. */
  ROUND_ALREADY_CHARGED: 'ROUND_ALREADY_CHARGED',
  /** The site requires record-level DP (a budget, or require_dp) and the task has no privacy.recordLevel. */
  DP_REQUIRED: 'DP_REQUIRED',
  /** The site cannot account the task's DP parameters on its data (e.g. an expected batch below one record). */
  DP_UNACCOUNTABLE: 'DP_UNACCOUNTABLE',
  /** Any other local failure: the details stay in the site's own log. */
  SITE_ERROR: 'SITE_ERROR',
} as const;

export type SiteDefenceReason = (typeof SITE_DEFENCE_REASONS)[keyof typeof SITE_DEFENCE_REASONS];

/**
 * The one text a site's refusal carries for each of its own codes. A refusal never carries text built
 * from local values (numbers from local data, file paths, exception messages): the coordinator may be
 * the adversary, and the site's own log keeps the details.
 */
const SITE_DEFENCE_TEXT: Readonly<Record<SiteDefenceReason, string>> = {
  ROUND_NOT_FRESH: 'the round counter is not above the highest this site accepted: a replayed or stale round',
  ROUND_CONCURRENT: 'another round of this site is still running; it takes part in one round at a time',
  MODEL_ALREADY_CONTRIBUTED: "this site's input was already unmasked in an aggregate on this model; it contributes once per model",
  MODEL_ALREADY_EVALUATED: "this site's evaluation of this model was already unmasked; it reports the metrics of a model once",
  MODEL_NOT_CHAIN_HEAD: "the round's model is not the head of the chain of commit records this site verified",
  OPTIMIZER_STATE_NOT_CHAIN_HEAD: "the round's server-optimiser state is not the one of this site's verified chain head",
  CHAIN_UNVERIFIED: "this site could not verify the chain of commit records back to the task's initial model",
  COMMIT_RECORD_INVALID: 'the commit record is not validly signed by a quorum this site accepts',
  STAGE_DEADLINE_PASSED: 'a stage deadline of the RoundConfig passed; this site ended the round and erased its keys and shares',
  SITE_DATA_INVALID: "the site's local data failed validation; it sits rounds out until its operator fixes it (details in the site's own log)",
  PRIVACY_BUDGET_EXCEEDED: "this round would take the privacy this site has spent on its data above its budget; it did not train for it",
  ROUND_ALREADY_CHARGED: "this round was already charged to this site's privacy budget; a round is trained once",
  DP_REQUIRED: 'this site requires record-level differential privacy and the task has none (privacy.recordLevel)',
  DP_UNACCOUNTABLE: "this site cannot account the task's differential-privacy parameters on its data",
  SITE_ERROR: "the site could not go on with the round; the details are in the site's own log",
};

function isSiteDefenceReason(reason: string): reason is SiteDefenceReason {
  return Object.hasOwn(SITE_DEFENCE_TEXT, reason);
}

/**
 * The fixed text of a refusal with `reason`: the site's own codes have theirs; a protocol check's code
 * (a SecAggError reason, which names what was wrong with the coordinator's message) gets one generic
 * sentence naming only the code.
 */
export function refusalText(reason: string): string {
  return isSiteDefenceReason(reason) ? SITE_DEFENCE_TEXT[reason] : `this site left the round (${reason}); the details are in the site's own log`;
}
