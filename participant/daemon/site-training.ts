/**
 * The site's work inside a round, outside the protocol: train on the global model of the round and
 * evaluate it (federated evaluation, DESIGN.md step 4), and at commit recompute model r+1 from the
 * broadcast aggregate and the server-optimiser state exactly as the coordinator did (DESIGN.md step 7:
 * the same decodeAggregate and nextModel, so the hashes agree bit for bit).
 *
 * Local randomness is never seeded from public values alone: the per-epoch shuffle from the site's
 * secret (SiteStateStore.roundSeed), Dropout masks from fresh random bytes (task-context.ts): a coordinator that could predict it, or make it repeat, could make a
 * site's update reproducible and read another site's update off the difference of two aggregates.
 *
 * Training that diverges (non-finite loss or parameters) yields a zero-weight update - delta 0, weight
 * 0, the evaluation of the global model made before training - instead of leaving the round mid-way:
 * leaving would tell the coordinator something about the local data, and the other sites' masks need
 * this site's input to cancel.
 */
import { FedgateError } from '../../platform/index.js';
import { sha256 } from '../../crypto/hash.js';
import { decodeAggregate, type AggregateValues } from '../../crypto/secagg/aggregate-codec.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import { extraMetricSlotCount, siteMetricSums } from '../../crypto/secagg/metric-slots.js';
import { nextModel } from '../../model/next-model.js';
import { decodePinnedOptimizerState } from '../chain/pinned-optimizer.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import type { TaskDocument } from '../../model/task.js';
import type { Dataset } from '../data/dataset.js';
import { TrainerError, type ProgressEvent, type Trainer } from '../trainer/index.js';
import type { SiteStateStore } from '../state/site-state.js';
import type { CommitComputation, LocalEvaluation, LocalTrainingResult } from '../round/round-session.js';

/** Fetches content-addressed bytes (model, aggregate, optimiser state) and checks their SHA-256. */
export interface BlobSource {
  fetch(hash: Uint8Array): Promise<Uint8Array>;
}

/** Where the site's secret seeds come from (SiteStateStore). */
export type SiteRandomness = Pick<SiteStateStore, 'roundSeed'>;

/** Purpose label of the per-epoch shuffle's seed (SiteStateStore.roundSeed). */
export const SHUFFLE_SEED_PURPOSE = 'shuffle';

export interface SiteTrainingOptions {
  readonly task: TaskDocument;
  readonly plan: ParameterLayout;
  readonly trainer: Pick<Trainer, 'train' | 'evaluate'>;
  readonly randomness: SiteRandomness;
  readonly train: Dataset;
  readonly test: Dataset;
  readonly blobs: BlobSource;
  readonly onProgress?: (event: ProgressEvent) => void;
  /**
   * The site's own log: why an evaluation sum was clamped or an evaluation dropped (reason codes
   * EVAL_LOSS_CLAMPED, EVAL_SUM_CLAMPED, EVAL_SUM_NOT_FINITE, EVAL_COUNT_INVALID, EVAL_SUM_MISSING).
   * Never sent to the coordinator.
   */
  readonly log?: { warn(fields: Record<string, unknown>, message: string): void };
}

export class SiteTraining {
  private train_: Dataset;
  private test: Dataset;

  constructor(private readonly options: SiteTrainingOptions) {
    this.train_ = options.train;
    this.test = options.test;
  }

  /**
   * Rounds from now on train and evaluate on `data` (the site's files changed and validated again); a
   * round already training keeps the data it started with.
   */
  useData(data: { readonly train: Dataset; readonly test: Dataset }): void {
    this.train_ = data.train;
    this.test = data.test;
  }

  /** Training examples the next round trains on (the held-out split never counts: it is never trained on). */
  get trainingExamples(): number {
    return this.train_.count;
  }

  async globalModel(config: RoundConfig): Promise<Float32Array> {
    return decodeWeights(this.options.plan, await this.options.blobs.fetch(config.modelHash));
  }

  async train(config: RoundConfig, signal: AbortSignal): Promise<LocalTrainingResult> {
    const { task, trainer } = this.options;
    const global = await this.globalModel(config);
    // A round that asks for no evaluation gets none: its metric slots stay 0 (round-guard.ts, one evaluation per model).
    const evaluation = config.purpose === 'train' ? notEvaluated(config) : await this.evaluate(global, config);
    let trained: Awaited<ReturnType<typeof trainer.train>>;
    try {
      trained = await trainer.train(global, this.train_, {
        epochs: task.training.epochs,
        batchSize: task.training.batchSize,
        learningRate: task.optimizer.learningRate,
        seed: this.seed(config, SHUFFLE_SEED_PURPOSE),
        proximalMu: task.training.proximalMu,
        signal,
        ...(this.options.onProgress === undefined ? {} : { onProgress: this.options.onProgress }),
      });
    } catch (error) {
      if (error instanceof TrainerError && error.reason === 'TRAINING_DIVERGED') return zeroWeightUpdate(global.length, evaluation, error.message);
      throw error;
    }
    const delta = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) {
      const value = (trained.parameters[i] as number) - (global[i] as number);
      if (!Number.isFinite(value)) return zeroWeightUpdate(global.length, evaluation, `the trained parameter ${i} is ${value}`);
      delta[i] = value;
    }
    return { delta, trainingExamples: trained.examples, ...evaluation };
  }

  /**
   * A uint32 seed for one purpose of this round: the first 4 bytes of the site's secret seed for it.
   * Keyed by H(RoundConfig), which covers the round id and everything else the coordinator chose, so a
   * RoundStart relabelled in any field (another federation id, another U) gets another seed too.
   */
  seed(config: RoundConfig, purpose: string): number {
    const bytes = this.options.randomness.roundSeed(roundConfigHash(config), purpose);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, false);
  }

  /** An evaluation-only round: the federated evaluation of the round's (committed) model, nothing else. */
  async evaluateModel(config: RoundConfig): Promise<LocalEvaluation> {
    return this.evaluate(await this.globalModel(config), config);
  }

  /**
   * Evaluates the round's global model on at most E_max local test examples, and bounds what it reports
   * (docs/protocol.md "Quantisation"): the loss sum is clamped to L_max * examples and each extra metric
   * sum to this site's bound for it (metric-slots.ts siteMetricSums), with the reason in the site's log;
   * a NaN anywhere, a missing sum or a count that is not one reports no evaluation at all (every metric
   * slot 0), so one poisoned value never mixes with the other sites' sums.
   */
  private async evaluate(global: Float32Array, config: RoundConfig): Promise<LocalEvaluation> {
    const test = this.test;
    const none = notEvaluated(config);
    if (test.count === 0) return none;
    const limit = Math.min(test.count, config.layout.maxEvalExamples);
    const data = limit === test.count ? test : { ...test, count: limit, features: test.features.subarray(0, limit * (test.features.length / test.count)), labels: test.labels.subarray(0, limit) };
    const result = await this.options.trainer.evaluate(global, data);
    const log = this.options.log;
    // A global model whose loss is NaN here reports no evaluation rather than a value masking would refuse.
    if (Number.isNaN(result.lossSum)) {
      log?.warn({ reason: 'EVAL_SUM_NOT_FINITE', slot: 'loss_sum' }, 'the evaluation loss is NaN: this site reports no evaluation for the round');
      return none;
    }
    const maxLossSum = config.layout.maxLossPerExample * result.examples;
    if (result.lossSum > maxLossSum) {
      log?.warn({ reason: 'EVAL_LOSS_CLAMPED', slot: 'loss_sum', bound: maxLossSum }, 'the evaluation loss sum exceeds L_max * examples: clamped to that bound');
    }
    const extra = siteMetricSums(config.metricSlots, result.sums, result.examples);
    for (const note of extra.notes) {
      log?.warn({ ...note }, note.reason === 'EVAL_SUM_CLAMPED' ? 'an evaluation sum exceeds its bound for this site: clamped to it' : 'an evaluation sum is unusable: this site reports no evaluation for the round');
    }
    if (extra.sums === undefined) return none;
    return { evalLossSum: Math.min(result.lossSum, maxLossSum), evalCorrect: result.correct, evalExamples: result.examples, ...(extra.sums.length === 0 ? {} : { metricSums: extra.sums }) };
  }

  /**
   * Model r+1 from model r, the aggregate the commit request names and the optimiser state RoundConfig
   * names, all fetched by hash; the hashes are this site's own, for SecAggClient.commit to compare.
   */
  async computeCommit(config: RoundConfig, request: CommitRequestMessage): Promise<CommitComputation> {
    const aggregateBytes = await this.options.blobs.fetch(request.aggregateHash);
    let aggregate: AggregateValues;
    try {
      aggregate = decodeAggregate(config, aggregateBytes);
    } catch (error) {
      throw new CommitComputationError((error as Error).message, { cause: error });
    }
    // The state names its optimiser; a pinned task allows only its own (participant/chain/pinned-optimizer.ts).
    const { spec, state } = decodePinnedOptimizerState(await this.options.blobs.fetch(config.optimizerStateHash), this.options.task.serverOptimizer);
    const next = nextModel({ layout: this.options.plan, model: await this.globalModel(config), optimizer: spec, optimizerState: state, aggregate });
    return {
      newModel: next.modelBytes,
      hashes: {
        previousModelHash: config.modelHash,
        aggregateHash: sha256(aggregateBytes),
        newModelHash: sha256(next.modelBytes),
        optimizerStateHash: sha256(next.optimizerStateBytes),
      },
    };
  }
}

/** No evaluation: every metric slot 0, the task's extra ones included. */
function notEvaluated(config: RoundConfig): LocalEvaluation {
  const extra = extraMetricSlotCount(config.metricSlots);
  return { evalLossSum: 0, evalCorrect: 0, evalExamples: 0, ...(extra === 0 ? {} : { metricSums: new Array<number>(extra).fill(0) }) };
}

/** The site cannot recompute the commit from what the coordinator broadcast (it refuses to sign). */
export class CommitComputationError extends FedgateError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('FAILED_PRECONDITION', message, { reason: 'COMMIT_RECOMPUTE_FAILED', ...options });
    this.name = 'CommitComputationError';
  }
}

/** The update of a site whose training diverged: it weighs nothing in FedAvg but keeps its evaluation. */
function zeroWeightUpdate(parameters: number, evaluation: LocalEvaluation, detail: string): LocalTrainingResult {
  return { delta: new Float32Array(parameters), trainingExamples: 0, ...evaluation, divergence: detail };
}
