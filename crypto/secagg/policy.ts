/**
 * What a site accepts (DESIGN.md step 1 and "Security model"): a site checks every RoundConfig against
 * its own policy from site.yaml before it makes any key, and refuses - with a typed error and nothing
 * secret produced - unless every rule holds. The coordinator cannot talk a site into a weaker round.
 */
import { bytesEqual, toHex } from '../bytes.js';
import { validateRoundConfig, type RoundConfig } from './config.js';
import type { CryptoErrorReason } from '../errors.js';
import { secaggPrecondition } from './errors.js';

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
}

/**
 * Throws SecAggError FAILED_PRECONDITION unless `siteId` may take part in `config` under `policy`.
 * Reasons: 'FEDERATION_MISMATCH', 'TASK_NOT_PINNED', 'SITE_NOT_IN_ROUND', 'TOO_FEW_PARTICIPANTS',
 * 'THRESHOLD_TOO_LOW' (t <= (k+1)/2), 'THRESHOLD_BELOW_SITE_MINIMUM', 'PLAINTEXT_NOT_ALLOWED',
 * 'SITE_NOT_IN_ROSTER'. A structurally invalid config fails first with INVALID_ARGUMENT.
 */
export function checkRoundConfigAgainstPolicy(config: RoundConfig, siteId: string, policy: SitePolicy): void {
  const context = { stage: 'round_config', site: siteId } as const;
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
  if (!config.participants.includes(siteId)) {
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
  if (policy.roster !== undefined) {
    const outsiders = config.participants.filter((member) => !policy.roster?.has(member));
    if (outsiders.length > 0) {
      refuse('SITE_NOT_IN_ROSTER', `RoundConfig.participants includes ${outsiders.length} site(s) outside the pinned roster, e.g. ${JSON.stringify(outsiders[0])}`);
    }
  }
}
