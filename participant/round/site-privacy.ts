/**
 * The site enforces its own privacy budget (site.yaml `privacy:`) on its records, whatever the coordinator
 * asks. The accounting comes from public parameters alone, never from a figure of the trainer or the
 * coordinator: the task's privacy.recordLevel (which the task hash pins) and the model's parameter count
 * for DP-SGD (crypto/dp dpSgdRoundRdp), and for participant-level DP the round's RoundConfig.distributedDp,
 * checked against the task's privacy.participantLevel (crypto/secagg participantLevelRoundCurve).
 *
 * Why participant-level DP counts against a record-level budget: a participant-level guarantee bounds what
 * the released sum says about any one site's whole (clipped) update; one record of this site changes only
 * this site's update, so the same curve bounds what a round says about each of the site's records. It is
 * a guarantee for the records under the trust model of distributed DP (at least t sites survive, at most
 * toleratedColluders of them reveal their noise to the coordinator; the other sites' noise is not
 * something this site can check), and the curve charged is the worst case that model allows: t survivors
 * (the sum may carry only t - toleratedColluders honest shares). So a site that requires DP accepts a task
 * with record-level DP, participant-level DP, or both. A task with both charges both curves composed
 * (their sum, on the store's grid): conservative, since each alone bounds the round's release.
 *
 * - Task acceptance (`account`): a site with a budget or `require_dp` refuses a task with neither
 *   recordLevel nor participantLevel (DP_REQUIRED: a round trained without noise spends unbounded epsilon),
 *   and any site refuses record-level parameters it cannot account on its data (DP_UNACCOUNTABLE: an
 *   expected batch q N below one record, or a round whose epsilon is not finite).
 * - Round start (`checkRound`): a round that would take the total spent on the site's data above its
 *   budget is refused (PRIVACY_BUDGET_EXCEEDED) before any key is made; nothing is charged.
 * - Before training (`chargeRound`): record before release. The round's curve is charged and persisted
 *   (PrivacyBudgetStore.spendOnce, under the store's lock, so the check is redone against what is on
 *   disk) before the site trains, so nothing computed from the data - the masked input with its noise
 *   share included - can leave uncharged; a crash after the charge over-counts one round, never
 *   under-counts. A round id is charged once (whatever task hash a coordinator sends with it again):
 *   ROUND_ALREADY_CHARGED, and no second training on it. A RoundConfig whose distributedDp is not what the
 *   task asks is refused again here (checkRoundDistributedDp), so no curve is ever charged from values
 *   the site did not check.
 *
 * Curves live on the store's grid of orders (crypto/dp curveOnOrders): an order a mechanism does not bound
 * (the snapped Gaussian's fractional orders) counts as unbounded there.
 *
 * The refusal codes go to the coordinator with their fixed texts (refusal.ts); the figures - epsilon
 * spent, this round, the budget - stay in the site's own log.
 */
import type { Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
import { dpSgdRoundRdp } from '../../crypto/dp/dp-sgd-round.js';
import { composeCurves, curveOnOrders, rdpToEpsilon, type RdpCurve } from '../../crypto/dp/rdp.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { checkRoundDistributedDp, participantLevelRoundCurve } from '../../crypto/secagg/distributed-dp-round.js';
import { participantLevelOf, type RecordLevelDpSpec, type TaskDocument } from '../../model/task.js';
import { FedgateError } from '../../platform/index.js';
import type { BudgetCheck, PrivacyBudget, PrivacyBudgetStore } from '../state/privacy-budget.js';
import { siteDefenceError } from './round-guard.js';

/**
 * The delta a site without a budget reads its spending at in its log, and the coordinator's default for
 * the epsilon it reports (the site's own delta is its private choice).
 */
export const REPORT_DELTA = 1e-5;

/** site.yaml `privacy:` as the site enforces it. */
export interface SitePrivacyPolicy {
  /** The most all rounds may spend together on the site's data; undefined = no cap (DP rounds are still counted). */
  readonly budget?: PrivacyBudget;
  /** Refuse tasks with neither privacy.recordLevel nor privacy.participantLevel (always so with a budget). */
  readonly requireDp: boolean;
  /** 32 bytes naming the site's training records in the budget file (participant/daemon/dataset-id.ts). */
  readonly datasetId: Uint8Array;
}

/** What the site knows of a task when it accounts it. */
export interface TaskPrivacyFacts {
  readonly task: Pick<TaskDocument, 'privacy'>;
  /** Parameters of the model the site built from the task (the snapped noise's grid depends on it). */
  readonly dimension: number;
  /** The site's training examples now (the expected batch is samplingRate times this). */
  readonly trainingExamples: number;
}

/** The record-level DP-SGD of one round of a task as this site accounts it. */
export interface RoundAccount {
  readonly recordLevel: RecordLevelDpSpec;
  /** On crypto/dp INTEGER_ORDERS. */
  readonly curve: RdpCurve;
  /** Epsilon of this round alone at the site's delta. */
  readonly epsilon: number;
}

/** What one training round of a task is charged: its record-level and participant-level curves composed. */
export interface RoundCharge {
  /** On the budget store's grid of orders. */
  readonly curve: RdpCurve;
  /** Epsilon of this round alone at the site's delta. */
  readonly epsilon: number;
  /** Of the record-level part alone, when the task has it. */
  readonly recordLevelEpsilon?: number;
  /** Of the participant-level part alone (t survivors), when the task has it. */
  readonly participantLevelEpsilon?: number;
}

export class SitePrivacy {
  private readonly log: Logger;

  constructor(
    readonly policy: SitePrivacyPolicy,
    private readonly store: PrivacyBudgetStore,
    logger: Logger,
  ) {
    if (!(policy.datasetId instanceof Uint8Array) || policy.datasetId.length !== 32) throw new TypeError('policy.datasetId must be a 32-byte hash');
    this.log = logger.child({ dataset: toHex(policy.datasetId).slice(0, 16) });
  }

  /** Whether the site refuses tasks without record-level DP. */
  get requiresDp(): boolean {
    return this.policy.requireDp || this.policy.budget !== undefined;
  }

  /** The delta the site reads epsilon at: its budget's, or REPORT_DELTA without one. */
  get delta(): number {
    return this.policy.budget?.delta ?? REPORT_DELTA;
  }

  /** Epsilon spent so far on the site's data, at `delta`. */
  epsilonSpent(): number {
    return this.store.epsilonSpent(this.policy.datasetId, this.delta);
  }

  /**
   * Task acceptance: the record-level account of a task with privacy.recordLevel; undefined for a task
   * without it (participant-level DP is accounted per round, from its RoundConfig: `roundCharge`). Refuses
   * (DP_REQUIRED, DP_UNACCOUNTABLE) a task this site does not accept.
   */
  account(facts: TaskPrivacyFacts): RoundAccount | undefined {
    const recordLevel = facts.task.privacy?.recordLevel;
    if (recordLevel === undefined) {
      // Participant-level DP also bounds each of this site's records (see the header): either will do.
      if (!this.requiresDp || facts.task.privacy?.participantLevel !== undefined) return undefined;
      throw siteDefenceError(
        'DP_REQUIRED',
        `the task has neither privacy.recordLevel nor privacy.participantLevel, and this site ${this.policy.budget === undefined ? 'requires DP (site.yaml privacy.require_dp)' : 'has a privacy budget (site.yaml privacy)'}: a round trained without DP noise spends unbounded epsilon on its records`,
      );
    }
    const expectedBatch = recordLevel.samplingRate * facts.trainingExamples;
    if (!(expectedBatch >= 1)) {
      throw siteDefenceError(
        'DP_UNACCOUNTABLE',
        `the task's samplingRate ${recordLevel.samplingRate} times this site's ${facts.trainingExamples} training examples is an expected batch of ${expectedBatch.toPrecision(3)} < 1 record: the noise would swamp the gradient and the step normalisation is undefined; the task needs a larger samplingRate for a site of this size`,
      );
    }
    let curve: RdpCurve;
    let epsilon: number;
    try {
      curve = dpSgdRoundRdp({ ...recordLevel, dimension: facts.dimension });
      epsilon = rdpToEpsilon(curve, this.delta).epsilon;
    } catch (error) {
      throw new FedgateError('FAILED_PRECONDITION', `the task's DP parameters cannot be accounted: ${(error as Error).message}`, { reason: 'DP_UNACCOUNTABLE', cause: error });
    }
    if (!Number.isFinite(epsilon)) {
      throw siteDefenceError('DP_UNACCOUNTABLE', `one round of the task (noiseMultiplier ${recordLevel.noiseMultiplier}, samplingRate ${recordLevel.samplingRate}, ${recordLevel.stepsPerRound} steps) spends an unbounded epsilon at delta ${this.delta}`);
    }
    return { recordLevel, curve, epsilon };
  }

  /**
   * What one training round of the task is charged, on the store's grid; undefined for a task without DP
   * on a site that does not require it. `round` is the round's RoundConfig, needed for participant-level
   * DP: its distributedDp is checked against the task (checkRoundDistributedDp: DP_REQUIRED,
   * DP_PARAMETERS_MISMATCH, ... before anything is computed from it) and charged at t survivors.
   */
  roundCharge(facts: TaskPrivacyFacts, round?: RoundConfig): RoundCharge | undefined {
    const recordLevel = this.account(facts);
    const participantLevel = this.participantLevelCurve(facts, round);
    if (recordLevel === undefined && participantLevel === undefined) return undefined;
    const { orders } = this.store;
    const parts = [recordLevel?.curve, participantLevel].filter((curve): curve is RdpCurve => curve !== undefined);
    const curve = composeCurves(
      parts.map((part) => curveOnOrders(part, orders)),
      orders,
    );
    const epsilon = rdpToEpsilon(curve, this.delta).epsilon;
    if (!Number.isFinite(epsilon)) {
      throw siteDefenceError('DP_UNACCOUNTABLE', `one round of the task spends an unbounded epsilon at delta ${this.delta} on this site's grid of ${orders.length} RDP orders`);
    }
    return {
      curve,
      epsilon,
      ...(recordLevel === undefined ? {} : { recordLevelEpsilon: recordLevel.epsilon }),
      ...(participantLevel === undefined ? {} : { participantLevelEpsilon: rdpToEpsilon(curveOnOrders(participantLevel, orders), this.delta).epsilon }),
    };
  }

  /** The participant-level curve of `round` (t survivors), its distributedDp checked against the task; undefined without. */
  private participantLevelCurve(facts: TaskPrivacyFacts, round: RoundConfig | undefined): RdpCurve | undefined {
    const requirement = participantLevelOf(facts.task);
    if (requirement === undefined) return undefined;
    if (round === undefined) throw new TypeError('a task with privacy.participantLevel is accounted per round: pass the RoundConfig');
    checkRoundDistributedDp(round, requirement);
    // The worst case every completed round allows: t survivors, of which toleratedColluders reveal their noise.
    return participantLevelRoundCurve(round, round.reconstructionThreshold, this.store.orders);
  }

  /**
   * Round start, before any key is made: refuses a task this site does not accept and, for a round that
   * trains, one whose charge would not fit the budget. Charges nothing. `round` as for roundCharge.
   */
  checkRound(facts: TaskPrivacyFacts, trains: boolean, round?: RoundConfig): void {
    // Refuses a task this site does not accept, even in a round that trains nothing.
    this.account(facts);
    const { budget } = this.policy;
    if (budget === undefined || !trains) return;
    const charge = this.roundCharge(facts, round);
    if (charge === undefined) return;
    const check = this.store.check(this.policy.datasetId, charge.curve, budget);
    if (!check.allowed) throw this.exceeded(check, charge, budget);
  }

  /**
   * Right before the site trains for round `roundId` of `taskHash`: charges the round's curve, persisted
   * before it resolves, and logs the site's exact figure. A task without DP on a site that does not
   * require it charges nothing. `round` (the round's RoundConfig) is needed for participant-level DP.
   */
  async chargeRound(taskHash: Uint8Array, roundId: Uint8Array, facts: TaskPrivacyFacts, round?: RoundConfig): Promise<void> {
    const charge = this.roundCharge(facts, round);
    if (charge === undefined) return;
    const { budget } = this.policy;
    let check: BudgetCheck;
    try {
      check = await this.store.spendOnce(this.policy.datasetId, { taskHash, roundId, curve: charge.curve }, budget ?? { delta: this.delta });
    } catch (error) {
      if (budget !== undefined && error instanceof FedgateError && error.reason === 'PRIVACY_BUDGET_EXCEEDED') {
        throw this.exceeded(this.store.check(this.policy.datasetId, charge.curve, budget), charge, budget);
      }
      throw error;
    }
    this.log.info(
      {
        round: toHex(roundId),
        task: toHex(taskHash),
        epsilonSpent: check.epsilonAfter,
        epsilonThisRound: check.epsilonAfter - check.epsilonBefore,
        epsilonOfRoundAlone: charge.epsilon,
        ...(charge.recordLevelEpsilon === undefined ? {} : { recordLevelEpsilonOfRound: charge.recordLevelEpsilon }),
        ...(charge.participantLevelEpsilon === undefined ? {} : { participantLevelEpsilonOfRound: charge.participantLevelEpsilon }),
        ...(budget === undefined ? { delta: this.delta, budget: 'none' } : { epsilonRemaining: budget.epsilon - check.epsilonAfter, budgetEpsilon: budget.epsilon, delta: budget.delta }),
      },
      'charged this round to the privacy budget before training',
    );
  }

  private exceeded(check: BudgetCheck, charge: RoundCharge, budget: PrivacyBudget): FedgateError {
    return siteDefenceError(
      'PRIVACY_BUDGET_EXCEEDED',
      `refusing the round: epsilon spent on this site's data ${check.epsilonBefore.toFixed(4)}, this round would cost ${(check.epsilonAfter - check.epsilonBefore).toFixed(4)} more (${charge.epsilon.toFixed(4)} alone) for a total of ${check.epsilonAfter.toFixed(4)}, above the budget epsilon ${budget.epsilon} at delta ${budget.delta}; nothing was charged`,
    );
  }
}
