/**
 * DP-SGD end to end through the Trainer (worker thread, the plan's graphs, node:crypto sampling and
 * snapped noise): the digits MLP learns under moderate noise, stays below (or near) the same model
 * trained without DP for about as many steps, and collapses under absurd noise (so the noise is really
 * applied); the result carries what the accountant needs and gives a finite epsilon.
 * Thresholds from measurement (2026-12-07, 300 steps, q = 64/N, C = 1, lr 0.5): non-DP 0.958, sigma 2
 * 0.89-0.92 (epsilon 2.2 at delta 1e-5), sigma 4 0.838, sigma 200 0.12.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTrainingPlan, type TaskDocument } from '../../../../model/index.js';
import { composeSteps, rdpToEpsilon, snappedDpSgdStepRdp } from '../../../../crypto/dp/index.js';
import { type Dataset, type ProgressEvent, Trainer } from '../../../../participant/index.js';
import { digitsSplit, digitsTask } from '../../../support/digits-task.js';

let train: Dataset;
let test: Dataset;
let plainAccuracy: number;
const base = (): TaskDocument => digitsTask({ kind: 'mlp', hidden: [32] }, {}, { kind: 'sgd', learningRate: 0.5 });
const STEPS = 300;

beforeAll(async () => {
  ({ train, test } = await digitsSplit());
  const plan = buildTrainingPlan(base());
  const trainer = await Trainer.create({ plan, device: 'cpu' });
  try {
    // ~300 steps of batch 64, as the DP runs take.
    const result = await trainer.train(plan.initialParameters, train, { epochs: 13, batchSize: 64, learningRate: 0.5, seed: 1 });
    const evaluation = await trainer.evaluate(result.parameters, test);
    plainAccuracy = evaluation.correct / evaluation.examples;
  } finally {
    await trainer.close();
  }
}, 120_000);

async function dpAccuracy(
  noiseMultiplier: number,
  request = { epochs: 1, batchSize: 64 },
): Promise<{ accuracy: number; result: Awaited<ReturnType<Trainer['train']>>; events: ProgressEvent[] }> {
  const events: ProgressEvent[] = [];
  const task: TaskDocument = { ...base(), privacy: { recordLevel: { clipNorm: 1, noiseMultiplier, samplingRate: 64 / train.count, stepsPerRound: STEPS } } };
  const plan = buildTrainingPlan(task);
  const trainer = await Trainer.create({ plan, device: 'cpu' });
  try {
    const result = await trainer.train(plan.initialParameters, train, { ...request, learningRate: 0.5, seed: 1, onProgress: (event) => events.push(event) });
    const evaluation = await trainer.evaluate(result.parameters, test);
    return { accuracy: evaluation.correct / evaluation.examples, result, events };
  } finally {
    await trainer.close();
  }
}

describe('DP-SGD on the digits MLP through the Trainer', () => {
  it('learns well above chance under sigma = 2, not above the non-DP run, and reports its accounting', async () => {
    expect(plainAccuracy).toBeGreaterThan(0.93);
    const { accuracy, result, events } = await dpAccuracy(2);
    // Progress: the round ends with one 'epoch' event over the stepsPerRound steps.
    expect(events.at(-1)).toMatchObject({ kind: 'epoch', step: STEPS, totalSteps: STEPS, epoch: 1, epochs: 1 });
    expect(events.at(-1)?.examplesSeen).toBe(result.dpSgd?.sampledExamples);
    expect(accuracy).toBeGreaterThan(0.75);
    expect(accuracy).toBeLessThan(plainAccuracy + 0.02);
    const q = 64 / train.count;
    expect(result.steps).toBe(STEPS);
    expect(result.dpSgd).toMatchObject({ samplingRate: q, noiseMultiplier: 2, clipNorm: 1, stepsRun: STEPS, dimension: 64 * 32 + 32 + 32 * 10 + 10, gridExponent: 24, trainingExamples: train.count });
    // Poisson batches: 300 steps of mean 64 (sd 8 each): the total is within 6 sd of 19200.
    expect(Math.abs((result.dpSgd?.sampledExamples ?? 0) - 64 * STEPS)).toBeLessThan(6 * Math.sqrt(64 * STEPS));
    const dp = result.dpSgd;
    if (dp === undefined) throw new Error('no accounting');
    const curve = composeSteps(snappedDpSgdStepRdp({ q: dp.samplingRate, sigma: dp.noiseMultiplier, clipNorm: dp.clipNorm, dimension: dp.dimension, gridExponent: dp.gridExponent }), dp.stepsRun);
    const { epsilon } = rdpToEpsilon(curve, 1e-5);
    expect(epsilon).toBeGreaterThan(0.3);
    expect(epsilon).toBeLessThan(5);
  }, 120_000);

  it('collapses under absurd noise (sigma = 200): the noise is really added; epochs and batchSize cannot turn DP off', async () => {
    const { accuracy, result } = await dpAccuracy(200, { epochs: 4, batchSize: 8 });
    expect(accuracy).toBeLessThan(0.5);
    expect(result.steps).toBe(STEPS);
    expect(result.dpSgd?.stepsRun).toBe(STEPS);
  }, 120_000);
});
