/**
 * What the federation loop runs on, compiled: every default applied and every value checked once
 * (coordinator/service/coordinator-options.ts compiles it). The Federation keeps this object as it is
 * given; nothing copies its fields one by one.
 */
import type { StageDeadlines } from '../../crypto/secagg/config.js';
import type { ServerOptimizerSpec } from '../../model/server-optimizer.js';
import type { SiteBackoffSettings } from './site-backoff.js';

/** Who takes part in a round. */
export interface ParticipantSettings {
  /** Sites a round needs before it starts (at least 2: secure aggregation needs two). */
  readonly minimum: number;
  /** Fraction C of the eligible sites sampled into a round, in (0, 1]. */
  readonly sampleFraction: number;
  /** How long to wait for `minimum` sites before warning that the federation is stalled. */
  readonly waitTimeoutMs: number;
  /** Site ids (certificate common names) allowed to join; undefined = every participant certificate. */
  readonly allowList?: readonly string[];
  /** When a site that refuses or fails round after round is left out of selection, and for how long (site-backoff.ts). */
  readonly siteBackoff: SiteBackoffSettings;
}

/** The secure-aggregation parameters every RoundConfig carries (DESIGN.md, "A round", steps 1 and 4). */
export interface SecAggSettings {
  /** k: neighbours per site (even); undefined = the complete graph (classic SecAgg). */
  readonly neighbourDegree?: number;
  /** Shamir threshold t; undefined = ceil(2(k+1)/3). */
  readonly reconstructionThreshold?: number;
  /** c: bound on each coordinate of a site's update; larger values are clipped. */
  readonly clipBound: number;
  /** W: examples at which a site's weight saturates at 1. */
  readonly maxWeight: number;
  /** E_max: the most evaluation examples one site reports per round. */
  readonly maxEvalExamples: number;
  /** L_max: the largest per-example evaluation loss counted. */
  readonly maxLossPerExample: number;
  /**
   * Y_max: the largest |target| of one element the regression metric slots are sized for (RoundConfig
   * metricSlots; regression tasks only). Resolution of the target-square slot: Y_max^2 E_max T / M.
   * @default 1000
   */
  readonly maxEvalTarget?: number;
  /**
   * R_max: the largest |prediction - target| of one element the regression error slots are sized for.
   * @default 1000
   */
  readonly maxEvalError?: number;
}

export interface FederationSettings {
  readonly federationId: string;
  /** The coordinator's state directory: models, ledger, round counter, federation.json. */
  readonly stateDirectory: string;
  /** Rounds to commit before the federation stops. */
  readonly rounds: number;
  readonly participants: ParticipantSettings;
  /** false = plaintext rounds (only sites with allow_plaintext take part). */
  readonly secureAggregation: boolean;
  readonly secagg: SecAggSettings;
  readonly deadlines: StageDeadlines;
  readonly serverOptimizer: ServerOptimizerSpec;
  /**
   * After the last round commits, run one evaluation-only round on the final model so its federated
   * accuracy is known (a round's metrics are of the model it started from).
   */
  readonly finalEvaluation: boolean;
}
