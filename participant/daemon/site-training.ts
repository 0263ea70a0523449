/**
 * The site's work inside a round, outside the protocol: train on the global model of the round and
 * evaluate it (federated evaluation, DESIGN.md step 4), and at commit recompute model r+1 from the
 * broadcast aggregate and the server-optimiser state exactly as the coordinator did (DESIGN.md step 7:
 * the same decodeAggregate and nextModel, so the hashes agree bit for bit).
 */
import { utf8 } from '../../crypto/bytes.js';
import { FedgateError } from '../../platform/index.js';
import { sha256 } from '../../crypto/hash.js';
import { decodeAggregate, type AggregateValues } from '../../crypto/secagg/aggregate-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import { nextModel } from '../../model/next-model.js';
import { decodePinnedOptimizerState } from '../chain/pinned-optimizer.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import type { TaskDocument } from '../../model/task.js';
import type { Dataset } from '../data/dataset.js';
import type { ProgressEvent, Trainer } from '../trainer/index.js';
import type { CommitComputation, LocalTrainingResult } from '../round/round-session.js';

/** Fetches content-addressed bytes (model, aggregate, optimiser state) and checks their SHA-256. */
export interface BlobSource {
  fetch(hash: Uint8Array): Promise<Uint8Array>;
}

export interface SiteTrainingOptions {
  readonly task: TaskDocument;
  readonly plan: ParameterLayout;
  readonly trainer: Trainer;
  readonly train: Dataset;
  readonly test: Dataset;
  readonly blobs: BlobSource;
  readonly siteId: string;
  readonly onProgress?: (event: ProgressEvent) => void;
}

export class SiteTraining {
  constructor(private readonly options: SiteTrainingOptions) {}

  async globalModel(config: RoundConfig): Promise<Float32Array> {
    return decodeWeights(this.options.plan, await this.options.blobs.fetch(config.modelHash));
  }

  async train(config: RoundConfig, signal: AbortSignal): Promise<LocalTrainingResult> {
    const { task, trainer } = this.options;
    const global = await this.globalModel(config);
    const evaluation = await this.evaluate(global, config);
    const trained = await trainer.train(global, this.options.train, {
      epochs: task.training.epochs,
      batchSize: task.training.batchSize,
      learningRate: task.optimizer.learningRate,
      // A different shuffle each round, reproducible from the round id.
      seed: seedFrom(config.roundId, this.options.siteId),
      proximalMu: task.training.proximalMu,
      signal,
      ...(this.options.onProgress === undefined ? {} : { onProgress: this.options.onProgress }),
    });
    const delta = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) delta[i] = (trained.parameters[i] as number) - (global[i] as number);
    return { delta, trainingExamples: trained.examples, ...evaluation };
  }

  /** Evaluates the round's global model on at most E_max local test examples. */
  private async evaluate(global: Float32Array, config: RoundConfig): Promise<{ evalLossSum: number; evalCorrect: number; evalExamples: number }> {
    const test = this.options.test;
    if (test.count === 0) return { evalLossSum: 0, evalCorrect: 0, evalExamples: 0 };
    const limit = Math.min(test.count, config.layout.maxEvalExamples);
    const data = limit === test.count ? test : { ...test, count: limit, features: test.features.subarray(0, limit * (test.features.length / test.count)), labels: test.labels.subarray(0, limit) };
    const result = await this.options.trainer.evaluate(global, data);
    return { evalLossSum: Math.min(result.lossSum, config.layout.maxLossPerExample * result.examples), evalCorrect: result.correct, evalExamples: result.examples };
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

/** The site cannot recompute the commit from what the coordinator broadcast (it refuses to sign). */
export class CommitComputationError extends FedgateError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('FAILED_PRECONDITION', message, { reason: 'COMMIT_RECOMPUTE_FAILED', ...options });
    this.name = 'CommitComputationError';
  }
}

function seedFrom(roundId: Uint8Array, siteId: string): number {
  const digest = sha256(roundId, utf8(siteId));
  return new DataView(digest.buffer, digest.byteOffset, digest.byteLength).getUint32(0, false);
}
