/**
 * The site enforces its own record-level privacy budget (site.yaml `privacy:`), whatever the coordinator
 * asks. The accounting comes from the task's public DP parameters alone (privacy.recordLevel, which the
 * task hash pins, and the model's parameter count): crypto/dp dpSgdRoundRdp, never a figure from the
 * trainer or the coordinator.
 *
 * - Task acceptance (`account`): a site with a budget or `require_dp` refuses a task without
 *   recordLevel (DP_REQUIRED: a round trained without noise spends unbounded epsilon), and any site
 *   refuses DP parameters it cannot account on its data (DP_UNACCOUNTABLE: an expected batch q N below
 *   one record, or a round whose epsilon is not finite).
 * - Round start (`checkRound`): a round that would take the total spent on the site's data above its
 *   budget is refused (PRIVACY_BUDGET_EXCEEDED) before any key is made; nothing is charged.
 * - Before training (`chargeRound`): record before release. The round's curve is charged and persisted
 *   (PrivacyBudgetStore.spendOnce, under the store's lock, so the check is redone against what is on
 *   disk) before the site trains, so nothing computed from the data can leave uncharged; a crash after
 *   the charge over-counts one round, never under-counts. A round id is charged once (whatever task
 *   hash a coordinator sends with it again): ROUND_ALREADY_CHARGED, and no second training on it.
 *
 * The refusal codes go to the coordinator with their fixed texts (refusal.ts); the figures - epsilon
 * spent, this round, the budget - stay in the site's own log.
 */
import type { Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
import { dpSgdRoundRdp } from '../../crypto/dp/dp-sgd-round.js';
import { rdpToEpsilon, type RdpCurve } from '../../crypto/dp/rdp.js';
import type { RecordLevelDpSpec, TaskDocument } from '../../model/task.js';
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
  /** Refuse tasks without privacy.recordLevel (always so with a budget). */
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

/** One round of a DP task as this site accounts it. */
export interface RoundAccount {
  readonly recordLevel: RecordLevelDpSpec;
  /** On crypto/dp INTEGER_ORDERS. */
  readonly curve: RdpCurve;
  /** Epsilon of this round alone at the site's delta. */
  readonly epsilon: number;
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
   * Task acceptance: the round account of a DP task, undefined for a task without DP on a site that
   * does not require it; refuses (DP_REQUIRED, DP_UNACCOUNTABLE) a task this site does not accept.
   */
  account(facts: TaskPrivacyFacts): RoundAccount | undefined {
    const recordLevel = facts.task.privacy?.recordLevel;
    if (recordLevel === undefined) {
      if (!this.requiresDp) return undefined;
      throw siteDefenceError(
        'DP_REQUIRED',
        `the task has no privacy.recordLevel, and this site ${this.policy.budget === undefined ? 'requires DP (site.yaml privacy.require_dp)' : 'has a privacy budget (site.yaml privacy)'}: a round trained without DP noise spends unbounded epsilon on its records`,
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
   * Round start, before any key is made: refuses a task this site does not accept and, for a round that
   * trains, one whose charge would not fit the budget. Charges nothing.
   */
  checkRound(facts: TaskPrivacyFacts, trains: boolean): void {
    const account = this.account(facts);
    const { budget } = this.policy;
    if (account === undefined || budget === undefined || !trains) return;
    const check = this.store.check(this.policy.datasetId, account.curve, budget);
    if (!check.allowed) throw this.exceeded(check, account, budget);
  }

  /**
   * Right before the site trains for round `roundId` of `taskHash`: charges the round's curve, persisted
   * before it resolves, and logs the site's exact figure. A task without DP on a site that does not
   * require it charges nothing.
   */
  async chargeRound(taskHash: Uint8Array, roundId: Uint8Array, facts: TaskPrivacyFacts): Promise<void> {
    const account = this.account(facts);
    if (account === undefined) return;
    const { budget } = this.policy;
    let check: BudgetCheck;
    try {
      check = await this.store.spendOnce(this.policy.datasetId, { taskHash, roundId, curve: account.curve }, budget ?? { delta: this.delta });
    } catch (error) {
      if (budget !== undefined && error instanceof FedgateError && error.reason === 'PRIVACY_BUDGET_EXCEEDED') {
        throw this.exceeded(this.store.check(this.policy.datasetId, account.curve, budget), account, budget);
      }
      throw error;
    }
    this.log.info(
      {
        round: toHex(roundId),
        task: toHex(taskHash),
        epsilonSpent: check.epsilonAfter,
        epsilonThisRound: check.epsilonAfter - check.epsilonBefore,
        epsilonOfRoundAlone: account.epsilon,
        ...(budget === undefined ? { delta: this.delta, budget: 'none' } : { epsilonRemaining: budget.epsilon - check.epsilonAfter, budgetEpsilon: budget.epsilon, delta: budget.delta }),
      },
      'charged this round to the privacy budget before training',
    );
  }

  private exceeded(check: BudgetCheck, account: RoundAccount, budget: PrivacyBudget): FedgateError {
    return siteDefenceError(
      'PRIVACY_BUDGET_EXCEEDED',
      `refusing the round: epsilon spent on this site's data ${check.epsilonBefore.toFixed(4)}, this round would cost ${(check.epsilonAfter - check.epsilonBefore).toFixed(4)} more (${account.epsilon.toFixed(4)} alone) for a total of ${check.epsilonAfter.toFixed(4)}, above the budget epsilon ${budget.epsilon} at delta ${budget.delta}; nothing was charged`,
    );
  }
}
