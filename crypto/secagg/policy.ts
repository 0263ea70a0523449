/**
 * What a site accepts (DESIGN.md step 1 and "Security model"): a site checks every RoundConfig against
 * its own policy from site.yaml before it makes any key, and refuses - with a typed error and nothing
 * secret produced - unless every rule holds. The coordinator cannot talk a site into a weaker round:
 * besides t > (k+1)/2 the site requires a collusion margin (margin.ts) that holds even where the
 * coordinator places the colluders.
 */
import { bytesEqual, toHex } from '../bytes.js';
import { validateRoundConfig, type RoundConfig } from './config.js';
import type { CryptoErrorReason } from '../errors.js';
import { checkRoundDistributedDp } from './distributed-dp-round.js';
import type { DistributedDpRequirement } from './dp-fields.js';
import { secaggPrecondition } from './errors.js';
import {
  DEFAULT_COMPLETE_GRAPH_UP_TO,
  DEFAULT_MIN_NEIGHBOUR_DEGREE,
  DEFAULT_MIN_TOLERATED_COLLUDERS,
  toleratedColluders,
  twoThirdsThreshold,
} from './margin.js';

export interface SitePolicy {
  /** Task hashes (SHA-256 of the task document) this site trains on. */
  readonly pinnedTaskHashes: readonly Uint8Array[];
  /** Fewest participants |U| (and survivors |U3|) this site takes part with. */
  readonly minParticipants: number;
  /** Lowest reconstruction threshold t this site accepts. */
  readonly minThreshold: number;
  /** @default false: plaintext (unmasked) rounds are refused. */
  readonly allowPlaintext?: boolean;
  /** When set (a CA-signed roster), every member of U must be on it (Sybil defence). */
  readonly roster?: ReadonlySet<string>;
  /** When set, rounds of any other federation are refused. */
  readonly federationId?: string;
  /**
   * Fewest colluding sites (besides the coordinator) a masked round must tolerate in the worst case,
   * min(2t - (k+1), k) - 1 (margin.ts `toleratedColluders`). 0 accepts rounds where the coordinator
   * and one colluding site may unmask another site.
   * @default 1 (DEFAULT_MIN_TOLERATED_COLLUDERS)
   */
  readonly minToleratedColluders?: number;
  /**
   * Smallest neighbour degree k of a masked round, or |U| - 1 (the complete graph) when that is smaller.
   * @default 40 (DEFAULT_MIN_NEIGHBOUR_DEGREE)
   */
  readonly minNeighbourDegree?: number;
  /**
   * A masked round of at most this many participants must use the complete graph (k = |U| - 1).
   * 0 never requires it.
   * @default 100 (DEFAULT_COMPLETE_GRAPH_UP_TO)
   */
  readonly completeGraphUpTo?: number;
  /**
   * Require t >= ceil(2(k+1)/3) in masked rounds. site.yaml cannot turn this off; false serves tests and
   * studies of the protocol itself, which run rounds down to the structural minimum t > (k+1)/2.
   * @default true
   */
  readonly requireTwoThirdsThreshold?: boolean;
  /**
   * The participant-level DP each pinned task asks for (its privacy.participantLevel), by task hash in
   * hex; a pinned task absent from the map asks for none. When set, RoundConfig.distributedDp must match
   * it exactly (distributed-dp-round.ts checkRoundDistributedDp). Unset: the caller makes that check
   * itself once it holds the task document (the participant daemon does, before any key is made).
   */
  readonly participantLevelDp?: ReadonlyMap<string, DistributedDpRequirement>;
}

/**
 * Throws SecAggError FAILED_PRECONDITION unless `siteId` may take part in `config` under `policy`.
 * Reasons: 'FEDERATION_MISMATCH', 'TASK_NOT_PINNED', 'SITE_NOT_IN_ROUND', 'TOO_FEW_PARTICIPANTS',
 * 'THRESHOLD_TOO_LOW' (t <= (k+1)/2), 'THRESHOLD_BELOW_SITE_MINIMUM', 'PLAINTEXT_NOT_ALLOWED', then for
 * masked rounds the collusion margin (collusionMarginShortfall), then the participant-level DP reasons
 * of checkRoundDistributedDp when `participantLevelDp` is set, then 'SITE_NOT_IN_ROSTER'. A structurally
 * invalid config fails first with INVALID_ARGUMENT.
 */
export function checkRoundConfigAgainstPolicy(config: RoundConfig, siteId: string, policy: SitePolicy): void {
  checkRoundAgainstPolicy(config, siteId, policy);
}

/**
 * The same rules for a round this site did not necessarily take part in: a committed round whose record
 * a site verifies as a link of its chain (commit-chain.ts). Everything but 'SITE_NOT_IN_ROUND'.
 */
export function checkCommittedRoundAgainstPolicy(config: RoundConfig, policy: SitePolicy): void {
  checkRoundAgainstPolicy(config, undefined, policy);
}

/** The rules of checkRoundConfigAgainstPolicy; the membership rule only when `siteId` is given. */
function checkRoundAgainstPolicy(config: RoundConfig, siteId: string | undefined, policy: SitePolicy): void {
  const context = siteId === undefined ? ({ stage: 'commit_record' } as const) : ({ stage: 'round_config', site: siteId } as const);
  const refuse = (reason: CryptoErrorReason, message: string): never => {
    throw secaggPrecondition(reason, message, context);
  };
  const { reconstructionThreshold: t, neighbourDegree: k } = config;
  // The threshold rules first: they are the ones validateRoundConfig also enforces, and a site should
  // say in its own words why it refuses a weak round.
  if (Number.isInteger(t) && Number.isInteger(k) && 2 * t <= k + 1) {
    refuse('THRESHOLD_TOO_LOW', `RoundConfig.reconstructionThreshold t = ${t} must exceed (k+1)/2 = ${(k + 1) / 2}; a minority of a neighbourhood could otherwise reconstruct`);
  }
  validateRoundConfig(config);
  if (policy.federationId !== undefined && policy.federationId !== config.federationId) {
    refuse('FEDERATION_MISMATCH', `RoundConfig.federationId ${JSON.stringify(config.federationId)} is not this site's federation ${JSON.stringify(policy.federationId)}`);
  }
  if (!policy.pinnedTaskHashes.some((pinned) => bytesEqual(pinned, config.taskHash))) {
    refuse('TASK_NOT_PINNED', `RoundConfig.taskHash ${toHex(config.taskHash)} is not among the ${policy.pinnedTaskHashes.length} task hashes this site pins`);
  }
  if (siteId !== undefined && !config.participants.includes(siteId)) {
    refuse('SITE_NOT_IN_ROUND', `RoundConfig.participants (${config.participants.length} sites) does not include this site`);
  }
  if (config.participants.length < policy.minParticipants) {
    refuse('TOO_FEW_PARTICIPANTS', `RoundConfig.participants has ${config.participants.length} sites, this site requires at least ${policy.minParticipants}`);
  }
  if (t < policy.minThreshold) {
    refuse('THRESHOLD_BELOW_SITE_MINIMUM', `RoundConfig.reconstructionThreshold t = ${t} is below this site's minimum ${policy.minThreshold}`);
  }
  if (config.plaintext && policy.allowPlaintext !== true) {
    refuse('PLAINTEXT_NOT_ALLOWED', 'RoundConfig.plaintext is true but this site does not allow plaintext rounds (allow_plaintext: false)');
  }
  // A plaintext round shows the coordinator every update anyway: a collusion margin would protect nothing.
  const shortfall = config.plaintext ? undefined : collusionMarginShortfall(config.participants.length, k, t, policy);
  if (shortfall !== undefined) refuse(shortfall.reason, shortfall.message);
  if (policy.participantLevelDp !== undefined) checkRoundDistributedDp(config, policy.participantLevelDp.get(toHex(config.taskHash)), siteId);
  if (policy.roster !== undefined) {
    const outsiders = config.participants.filter((member) => !policy.roster?.has(member));
    if (outsiders.length > 0) {
      refuse('SITE_NOT_IN_ROSTER', `RoundConfig.participants includes ${outsiders.length} site(s) outside the pinned roster, e.g. ${JSON.stringify(outsiders[0])}`);
    }
  }
}

/** The margin rules of SitePolicy, each with its default when absent. */
export type MarginPolicy = Pick<SitePolicy, 'minToleratedColluders' | 'minNeighbourDegree' | 'completeGraphUpTo' | 'requireTwoThirdsThreshold'>;

export interface MarginShortfall {
  readonly reason: 'COMPLETE_GRAPH_REQUIRED' | 'NEIGHBOUR_DEGREE_TOO_LOW' | 'THRESHOLD_WITHOUT_MARGIN' | 'TOO_FEW_TOLERATED_COLLUDERS';
  readonly message: string;
}

/**
 * The first collusion-margin rule a masked round of `participants` sites with degree k and threshold t
 * breaks under `policy` (the defaults when `{}`), or undefined. The coordinator uses it to warn about
 * rounds that default sites refuse. Rules (margin.ts; DESIGN.md "What a site checks for itself"):
 * 'COMPLETE_GRAPH_REQUIRED' (|U| <= completeGraphUpTo and k < |U| - 1), 'NEIGHBOUR_DEGREE_TOO_LOW'
 * (k < min(|U| - 1, minNeighbourDegree)), 'THRESHOLD_WITHOUT_MARGIN' (t < ceil(2(k+1)/3)),
 * 'TOO_FEW_TOLERATED_COLLUDERS' (min(2t - (k+1), k) - 1 < minToleratedColluders). Messages state the
 * round's public values and the site.yaml key, not the site's own settings.
 */
export function collusionMarginShortfall(participants: number, neighbourDegree: number, threshold: number, policy: MarginPolicy = {}): MarginShortfall | undefined {
  const k = neighbourDegree;
  const t = threshold;
  const round = `RoundConfig (|U| = ${participants}, k = ${k}, t = ${t})`;
  if (participants <= (policy.completeGraphUpTo ?? DEFAULT_COMPLETE_GRAPH_UP_TO) && k < participants - 1) {
    return {
      reason: 'COMPLETE_GRAPH_REQUIRED',
      message: `${round} is not the complete graph (k = |U| - 1 = ${participants - 1}), which the site requires for a round of this size (policy.complete_graph_up_to)`,
    };
  }
  if (k < Math.min(participants - 1, policy.minNeighbourDegree ?? DEFAULT_MIN_NEIGHBOUR_DEGREE)) {
    return { reason: 'NEIGHBOUR_DEGREE_TOO_LOW', message: `${round} gives each site fewer neighbours than the site requires (policy.min_neighbour_degree)` };
  }
  if (policy.requireTwoThirdsThreshold !== false && t < twoThirdsThreshold(k)) {
    return {
      reason: 'THRESHOLD_WITHOUT_MARGIN',
      message: `${round} has t below ceil(2(k+1)/3) = ${twoThirdsThreshold(k)}, the two-thirds majority of a closed neighbourhood that a site requires`,
    };
  }
  const tolerated = toleratedColluders(k, t);
  if (tolerated < (policy.minToleratedColluders ?? DEFAULT_MIN_TOLERATED_COLLUDERS)) {
    return {
      reason: 'TOO_FEW_TOLERATED_COLLUDERS',
      message: `${round} tolerates ${Math.max(tolerated, 0)} colluding site(s) besides the coordinator (min(2t - (k+1), k) - 1), fewer than the site requires (policy.min_tolerated_colluders)`,
    };
  }
  return undefined;
}
