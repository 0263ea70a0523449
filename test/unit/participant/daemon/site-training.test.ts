/**
 * The site's local training inside a round (participant/daemon/site-training.ts): its randomness comes
 * from the site secret (issue: "Replay" - a shuffle a coordinator can predict or repeat makes a site's
 * update reproducible), and diverging training yields a zero-weight update instead of a refusal.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../../../../crypto/hash.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import type { CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import { createRoundConfig, makeRoundId, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { buildTrainingPlan, type TrainingPlan } from '../../../../model/plan.js';
import { encodeWeights } from '../../../../model/weight-codec.js';
import { CommitComputationError, SiteTraining, type SiteTrainingOptions } from '../../../../participant/daemon/site-training.js';
import type { Dataset } from '../../../../participant/data/dataset.js';
import { SITE_SECRET_FILE, SiteStateStore } from '../../../../participant/state/index.js';
import { refusalFor } from '../../../../participant/round/refusal.js';
import { Trainer, TrainerError, type TrainOptions } from '../../../../participant/trainer/index.js';
import { digitsSplit, digitsTask } from '../../../support/digits-task.js';

const TASK = digitsTask({ kind: 'logreg' });
let plan: TrainingPlan;
let data: { train: Dataset; test: Dataset };
let root: string;

beforeAll(async () => {
  plan = buildTrainingPlan(TASK);
  data = await digitsSplit();
  root = await mkdtemp(join(tmpdir(), 'fedgate-site-training-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function roundConfig(
  model: Float32Array,
  counter: number,
  roundId = makeRoundId(counter, new Uint8Array(randomBytes(16))),
  extra: { purpose?: RoundConfig['purpose']; maxEvalExamples?: number } = {},
): { config: RoundConfig; blob: Uint8Array } {
  const blob = encodeWeights(plan, model);
  const config = createRoundConfig({
    federationId: 'fed',
    roundId,
    participants: ['site-a', 'site-b', 'site-c'],
    taskHash: sha256(new Uint8Array([1])),
    modelHash: sha256(blob),
    optimizerStateHash: sha256(new Uint8Array([2])),
    neighbourDegree: 2,
    layout: { parameterSegments: [{ length: model.length, bound: 1 }], maxLossPerExample: 50, maxEvalExamples: extra.maxEvalExamples ?? 1000 },
    maxWeight: 2000,
    ...(extra.purpose === undefined ? {} : { purpose: extra.purpose }),
  });
  return { config, blob };
}

function training(store: SiteStateStore, blob: Uint8Array, trainer: SiteTrainingOptions['trainer']): SiteTraining {
  return new SiteTraining({ task: TASK, plan, trainer, train: data.train, test: data.test, randomness: store, blobs: { fetch: async () => blob } });
}

/** A trainer that records the options it was called with and returns `parameters` unchanged (or what `result` says). */
function recordingTrainer(seen: TrainOptions[], result?: (parameters: Float32Array) => Float32Array): SiteTrainingOptions['trainer'] {
  return {
    train: async (parameters, dataset, options) => {
      seen.push(options);
      return { parameters: result?.(parameters) ?? parameters, examples: dataset.count, meanLoss: 1, trainAccuracy: 0.5, steps: 1, runs: 1 };
    },
    evaluate: async (_parameters, dataset) => ({ lossSum: dataset.count * 2, correct: 3, examples: dataset.count }),
  };
}

describe('local randomness', () => {
  it('seeds the shuffle from the site secret: unique per site and per round, reproducible by the site, unpredictable without the secret', async () => {
    const [a, b] = await Promise.all([SiteStateStore.open(join(root, 'a')), SiteStateStore.open(join(root, 'b'))]);
    const seen: TrainOptions[] = [];
    const first = roundConfig(plan.initialParameters, 1);
    const second = roundConfig(plan.initialParameters, 2);
    const seedOf = async (store: SiteStateStore, round: { config: RoundConfig; blob: Uint8Array }): Promise<number> => {
      await training(store, round.blob, recordingTrainer(seen)).train(round.config, new AbortController().signal);
      return (seen.at(-1) as TrainOptions).seed;
    };
    // Two sites with the same data, the same task and the same round: different shuffles.
    expect(await seedOf(a, first)).not.toBe(await seedOf(b, first));
    // One site in two rounds: different shuffles; the same round again: the same one (the site can reproduce it).
    expect(await seedOf(a, first)).not.toBe(await seedOf(a, second));
    expect(await seedOf(a, first)).toBe(await seedOf(a, first));
    // Everything public (round id, site id, task, data) is the same here; only the secret file differs.
    const elsewhere = join(root, 'a-copy');
    await SiteStateStore.open(elsewhere);
    await writeFile(join(elsewhere, SITE_SECRET_FILE), randomBytes(32));
    expect(await seedOf(await SiteStateStore.open(elsewhere), first)).not.toBe(await seedOf(a, first));
  });

  it('binds the seed to the whole RoundConfig: the same round id relabelled (another federation id) gets another seed', async () => {
    const store = await SiteStateStore.open(join(root, 'c'));
    const seen: TrainOptions[] = [];
    const round = roundConfig(plan.initialParameters, 1);
    const relabelled = { ...round.config, federationId: 'another-federation' };
    const site = training(store, round.blob, recordingTrainer(seen));
    await site.train(round.config, new AbortController().signal);
    await site.train(relabelled, new AbortController().signal);
    expect(seen[0]?.seed).not.toBe(seen[1]?.seed);
  });
});

describe('diverging local training', () => {
  it('real training that diverges gives a zero-weight update with the evaluation of the global model, not an error', async () => {
    const store = await SiteStateStore.open(join(root, 'd'));
    const trainer = await Trainer.create({ plan, device: 'cpu' });
    try {
      // Logits overflow float32 at the first step (as in the trainer's own divergence test).
      const huge = plan.initialParameters.map(() => 3e38);
      const round = roundConfig(huge, 1);
      const result = await training(store, round.blob, trainer).train(round.config, new AbortController().signal);
      expect(result.divergence).toMatch(/the training loss is (NaN|Infinity)/);
      expect(result.trainingExamples).toBe(0);
      expect(result.delta).toHaveLength(huge.length);
      expect(result.delta.every((value) => value === 0)).toBe(true);
      // The evaluation slots are usable by masking: finite and within their bounds.
      expect(Number.isFinite(result.evalLossSum)).toBe(true);
      expect(result.evalLossSum).toBeLessThanOrEqual(50 * result.evalExamples);
      expect(result.evalExamples === 0 || result.evalExamples === data.test.count).toBe(true);

      // The same site and trainer on a sane model train normally afterwards.
      const sane = roundConfig(plan.initialParameters, 2);
      const normal = await training(store, sane.blob, trainer).train(sane.config, new AbortController().signal);
      expect(normal.divergence).toBeUndefined();
      expect(normal.trainingExamples).toBe(data.train.count);
      expect([normal.evalCorrect, normal.evalExamples]).toEqual([expect.any(Number), data.test.count]);
    } finally {
      await trainer.close();
    }
  });

  it('parameters that come back non-finite give a zero-weight update that keeps the evaluation', async () => {
    const store = await SiteStateStore.open(join(root, 'e'));
    const round = roundConfig(plan.initialParameters, 1);
    const result = await training(store, round.blob, recordingTrainer([], (parameters) => parameters.map((value, index) => (index === 12 ? Number.NaN : value)))).train(round.config, new AbortController().signal);
    expect(result).toMatchObject({ trainingExamples: 0, evalLossSum: data.test.count * 2, evalCorrect: 3, evalExamples: data.test.count });
    expect(result.delta.every((value) => value === 0)).toBe(true);
    expect(result.divergence).toContain('NaN');
  });
});

describe('the held-out split under record-level DP', () => {
  it('is never trained on: training sees the training split alone, the evaluation the held-out split alone, and the accounted count is the training split', async () => {
    const store = await SiteStateStore.open(join(root, 'held-out'));
    const trainedOn: Dataset[] = [];
    const evaluatedOn: Dataset[] = [];
    const trainer: SiteTrainingOptions['trainer'] = {
      train: async (parameters, dataset) => {
        trainedOn.push(dataset);
        return { parameters, examples: dataset.count, meanLoss: 1, trainAccuracy: 0.5, steps: 1, runs: 1 };
      },
      evaluate: async (_parameters, dataset) => {
        evaluatedOn.push(dataset);
        return { lossSum: dataset.count, correct: 1, examples: dataset.count };
      },
    };
    const round = roundConfig(plan.initialParameters, 40);
    const dpTask = { ...TASK, privacy: { recordLevel: { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.05, stepsPerRound: 10 } } };
    const site = new SiteTraining({ task: dpTask, plan, trainer, train: data.train, test: data.test, randomness: store, blobs: { fetch: async () => round.blob } });
    await site.train(round.config, new AbortController().signal);
    expect(trainedOn).toEqual([data.train]);
    expect(evaluatedOn.map((dataset) => dataset.features.buffer)).toEqual([data.test.features.buffer]);
    expect(site.trainingExamples).toBe(data.train.count);
    // The two splits share no example (no feature row of the held-out split is a training row).
    const rows = (dataset: Dataset): Set<string> => {
      const width = dataset.features.length / dataset.count;
      return new Set(Array.from({ length: dataset.count }, (_, i) => Buffer.from(dataset.features.buffer, dataset.features.byteOffset + i * width * 4, width * 4).toString('hex')));
    };
    const trainRows = rows(data.train);
    expect([...rows(data.test)].filter((row) => trainRows.has(row))).toEqual([]);
  });
});

describe('what the site reports of its training and evaluation', () => {
  it("seeds the shuffle with the first 4 bytes (big-endian) of the site's secret seed for H(RoundConfig) and 'shuffle'", async () => {
    const store = await SiteStateStore.open(join(root, 'seed-bytes'));
    const seen: TrainOptions[] = [];
    const round = roundConfig(plan.initialParameters, 1);
    await training(store, round.blob, recordingTrainer(seen)).train(round.config, new AbortController().signal);
    const secret = store.roundSeed(roundConfigHash(round.config), 'shuffle');
    expect(seen[0]?.seed).toBe(Buffer.from(secret).readUInt32BE(0));
    expect(seen[0]).toMatchObject({ epochs: TASK.training.epochs, batchSize: TASK.training.batchSize, learningRate: TASK.optimizer.learningRate });
  });

  it('uploads the local model minus the global model, and the count the trainer trained on', async () => {
    const store = await SiteStateStore.open(join(root, 'delta'));
    const round = roundConfig(plan.initialParameters, 1);
    const local = plan.initialParameters.map((value, index) => value + index / 1024);
    const result = await training(store, round.blob, recordingTrainer([], () => local)).train(round.config, new AbortController().signal);
    const expected = new Float32Array(local.length).map((_, index) => (local[index] as number) - (plan.initialParameters[index] as number));
    expect(result.delta).toEqual(expected);
    expect(result.delta.some((value) => value !== 0)).toBe(true);
    expect(result).toMatchObject({ trainingExamples: data.train.count, evalLossSum: data.test.count * 2, evalCorrect: 3, evalExamples: data.test.count });
    expect(result.divergence).toBeUndefined();
  });

  it("a round that only trains evaluates nothing: the trainer's evaluate is not called and the metric slots are 0", async () => {
    const store = await SiteStateStore.open(join(root, 'train-only'));
    let evaluations = 0;
    const trainer = recordingTrainer([]);
    const counting: SiteTrainingOptions['trainer'] = { train: trainer.train, evaluate: async (...args) => (evaluations++, trainer.evaluate(...args)) };
    const round = roundConfig(plan.initialParameters, 1, undefined, { purpose: 'train' });
    const result = await training(store, round.blob, counting).train(round.config, new AbortController().signal);
    expect(evaluations).toBe(0);
    expect(result).toMatchObject({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0, trainingExamples: data.train.count });
  });

  it('evaluates at most maxEvalExamples held-out examples (the first ones, rows intact)', async () => {
    const store = await SiteStateStore.open(join(root, 'eval-limit'));
    const evaluatedOn: Dataset[] = [];
    const trainer: SiteTrainingOptions['trainer'] = {
      train: recordingTrainer([]).train,
      evaluate: async (_parameters, dataset) => (evaluatedOn.push(dataset), { lossSum: dataset.count, correct: 1, examples: dataset.count }),
    };
    const round = roundConfig(plan.initialParameters, 1, undefined, { maxEvalExamples: 5 });
    const result = await training(store, round.blob, trainer).evaluateModel(round.config);
    const width = data.test.features.length / data.test.count;
    const seen = evaluatedOn[0] as Dataset;
    expect(seen.count).toBe(5);
    expect(Array.from(seen.labels)).toEqual(Array.from(data.test.labels.subarray(0, 5)));
    expect(Array.from(seen.features)).toEqual(Array.from(data.test.features.subarray(0, 5 * width)));
    expect(result).toEqual({ evalLossSum: 5, evalCorrect: 1, evalExamples: 5 });
  });

  it('caps the reported loss at maxLossPerExample per example, reports nothing for a NaN loss or an empty held-out split', async () => {
    const store = await SiteStateStore.open(join(root, 'eval-bounds'));
    const round = roundConfig(plan.initialParameters, 1);
    const evaluating = (lossSum: number): SiteTrainingOptions['trainer'] => ({ train: recordingTrainer([]).train, evaluate: async (_parameters, dataset) => ({ lossSum, correct: 2, examples: dataset.count }) });
    const n = data.test.count;
    expect(await training(store, round.blob, evaluating(1e9)).evaluateModel(round.config)).toEqual({ evalLossSum: 50 * n, evalCorrect: 2, evalExamples: n });
    expect(await training(store, round.blob, evaluating(Number.POSITIVE_INFINITY)).evaluateModel(round.config)).toEqual({ evalLossSum: 50 * n, evalCorrect: 2, evalExamples: n });
    expect(await training(store, round.blob, evaluating(3.5)).evaluateModel(round.config)).toEqual({ evalLossSum: 3.5, evalCorrect: 2, evalExamples: n });
    expect(await training(store, round.blob, evaluating(Number.NaN)).evaluateModel(round.config)).toEqual({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0 });
    let called = false;
    const empty = { ...data.test, count: 0, features: new Float32Array(0), labels: data.test.labels.subarray(0, 0) };
    const site = new SiteTraining({
      task: TASK,
      plan,
      trainer: { train: recordingTrainer([]).train, evaluate: async () => ((called = true), { lossSum: 1, correct: 1, examples: 1 }) },
      train: data.train,
      test: empty,
      randomness: store,
      blobs: { fetch: async () => round.blob },
    });
    expect(await site.evaluateModel(round.config)).toEqual({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0 });
    expect(called).toBe(false);
  });

  it('leaves the round on a training failure that is not a divergence (no zero-weight update passed off as training)', async () => {
    const store = await SiteStateStore.open(join(root, 'failure'));
    const round = roundConfig(plan.initialParameters, 1);
    const failing = (error: Error): SiteTrainingOptions['trainer'] => ({
      train: async () => {
        throw error;
      },
      evaluate: recordingTrainer([]).evaluate,
    });
    const crashed = new TrainerError('INTERNAL', 'WORKER_CRASHED', 'the worker exited');
    await expect(training(store, round.blob, failing(crashed)).train(round.config, new AbortController().signal)).rejects.toBe(crashed);
    const plain = new Error('disk full');
    await expect(training(store, round.blob, failing(plain)).train(round.config, new AbortController().signal)).rejects.toBe(plain);
    const diverged = new TrainerError('ABORTED', 'TRAINING_DIVERGED', 'epoch 0, step 3: the training loss is Infinity');
    const result = await training(store, round.blob, failing(diverged)).train(round.config, new AbortController().signal);
    expect(result).toMatchObject({ trainingExamples: 0, divergence: diverged.message });
  });

  it('trains the next rounds on the data useData gives it, and counts its training examples', async () => {
    const store = await SiteStateStore.open(join(root, 'use-data'));
    const trainedOn: Dataset[] = [];
    const trainer: SiteTrainingOptions['trainer'] = {
      train: async (parameters, dataset) => (trainedOn.push(dataset), { parameters, examples: dataset.count, meanLoss: 1, trainAccuracy: 0.5, steps: 1, runs: 1 }),
      evaluate: async (_parameters, dataset) => ({ lossSum: dataset.count, correct: 0, examples: dataset.count }),
    };
    const round = roundConfig(plan.initialParameters, 1);
    const site = training(store, round.blob, trainer);
    expect(site.trainingExamples).toBe(data.train.count);
    const smaller = { train: { ...data.test }, test: { ...data.test, count: 0, features: new Float32Array(0), labels: data.test.labels.subarray(0, 0) } };
    site.useData(smaller);
    expect(site.trainingExamples).toBe(data.test.count);
    const result = await site.train(round.config, new AbortController().signal);
    expect(trainedOn).toEqual([smaller.train]);
    expect(result).toMatchObject({ trainingExamples: data.test.count, evalExamples: 0 });
  });

  it('hands the trainer its progress callback', async () => {
    const store = await SiteStateStore.open(join(root, 'progress'));
    const seen: TrainOptions[] = [];
    const onProgress = (): void => undefined;
    const round = roundConfig(plan.initialParameters, 1);
    const site = new SiteTraining({ task: TASK, plan, trainer: recordingTrainer(seen), train: data.train, test: data.test, randomness: store, blobs: { fetch: async () => round.blob }, onProgress });
    await site.train(round.config, new AbortController().signal);
    expect(seen[0]?.onProgress).toBe(onProgress);
  });
});

describe('the commit the site recomputes', () => {
  it('refuses an aggregate that does not decode for the round with COMMIT_RECOMPUTE_FAILED, a code that may go to the coordinator', async () => {
    const store = await SiteStateStore.open(join(root, 'commit'));
    const round = roundConfig(plan.initialParameters, 1);
    const garbage = new Uint8Array([1, 2, 3]);
    const site = new SiteTraining({ task: TASK, plan, trainer: recordingTrainer([]), train: data.train, test: data.test, randomness: store, blobs: { fetch: async (hash) => (Buffer.from(hash).equals(Buffer.from(sha256(garbage))) ? garbage : round.blob) } });
    const request = { stage: 'commit_request', roundId: round.config.roundId, aggregateHash: sha256(garbage) } as unknown as CommitRequestMessage;
    const failure = await site.computeCommit(round.config, request).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CommitComputationError);
    expect(failure).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'COMMIT_RECOMPUTE_FAILED', name: 'CommitComputationError' });
    expect((failure as Error).cause).toBeInstanceOf(Error);
    expect(refusalFor(failure).reason).toBe('COMMIT_RECOMPUTE_FAILED');
  });
});

describe("the site's bounds on its extra metric sums (RoundConfig.metricSlots)", () => {
  const slots = { kind: 'regression', outputs: 1, maxAbsTarget: 10, maxAbsError: 4 } as const;
  const sums = (values: readonly number[]): Record<string, number> => ({ squared_error_sum: values[0] as number, absolute_error_sum: values[1] as number, target_sum: values[2] as number, target_square_sum: values[3] as number });

  async function evaluateWith(name: string, reported: Record<string, number>, lossSum = 3): Promise<{ result: Awaited<ReturnType<SiteTraining['evaluateModel']>>; warnings: Record<string, unknown>[] }> {
    const store = await SiteStateStore.open(join(root, name));
    const round = roundConfig(plan.initialParameters, 1);
    const config = createRoundConfig({ ...round.config, metricSlots: slots });
    const warnings: Record<string, unknown>[] = [];
    const trainer: SiteTrainingOptions['trainer'] = { train: recordingTrainer([]).train, evaluate: async (_parameters, dataset) => ({ lossSum, correct: 0, examples: dataset.count, sums: reported }) };
    const site = new SiteTraining({ task: TASK, plan, trainer, train: data.train, test: data.test, randomness: store, blobs: { fetch: async () => round.blob }, log: { warn: (fields) => warnings.push(fields) } });
    return { result: await site.evaluateModel(config), warnings };
  }

  it('reports sums within its bounds as they are, in slot order', async () => {
    const { result, warnings } = await evaluateWith('extra-within', sums([5, 2, -1, 40]));
    expect(result).toEqual({ evalLossSum: 3, evalCorrect: 0, evalExamples: data.test.count, metricSums: [5, 2, -1, 40] });
    expect(warnings).toEqual([]);
  });

  it('clamps a huge error sum to R_max^2 * examples * T and logs EVAL_SUM_CLAMPED (the loss sum: EVAL_LOSS_CLAMPED)', async () => {
    const n = data.test.count;
    const { result, warnings } = await evaluateWith('extra-clamped', sums([1e15, 2, -1, 40]), 1e12);
    expect(result).toEqual({ evalLossSum: 50 * n, evalCorrect: 0, evalExamples: n, metricSums: [16 * n, 2, -1, 40] });
    expect(warnings).toEqual([
      { reason: 'EVAL_LOSS_CLAMPED', slot: 'loss_sum', bound: 50 * n },
      { reason: 'EVAL_SUM_CLAMPED', slot: 'squared_error_sum', bound: 16 * n },
    ]);
  });

  it('reports no evaluation at all (every slot 0) for a NaN sum, with EVAL_SUM_NOT_FINITE in its log', async () => {
    const { result, warnings } = await evaluateWith('extra-nan', sums([5, Number.NaN, -1, 40]));
    expect(result).toEqual({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0, metricSums: [0, 0, 0, 0] });
    expect(warnings).toEqual([{ reason: 'EVAL_SUM_NOT_FINITE', slot: 'absolute_error_sum' }]);
  });
});
