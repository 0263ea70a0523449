/**
 * The training-step graph against hand-computed references: one SGD step of logistic regression,
 * SGD momentum / weight decay and Adam over several steps (PyTorch's update rules re-implemented in
 * float64 here), FedProx's proximal gradient, and trainBlock = S trainStep runs.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, type OptimizerSpec, type TrainingPlan } from '../../../../model/index.js';
import type { ZooSpec as ModelSpec } from '../../../support/model/tasks.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed, type Output } from '../../../support/model/ort.js';
import { adamStep, logregGradient, logregLogits, crossEntropy, sgdMomentumStep, type Batch } from '../../../support/model/reference.js';
import { taskFor } from '../../../support/model/tasks.js';

const FEATURES = 5;
const CLASSES = 3;
const BATCH = 4;
const logreg: ModelSpec = { kind: 'logreg', inputShape: [FEATURES], classes: CLASSES };

function batchFor(seed: number): Batch {
  return {
    x: Float64Array.from(pseudoRandom(BATCH * FEATURES, seed, -2, 2).map(Math.fround)),
    labels: Array.from({ length: BATCH }, (_, i) => (i * 2 + seed) % CLASSES),
  };
}

const batchFeeds = (batch: Batch): Record<string, Feed> => ({
  input: f32(batch.x, [BATCH, FEATURES]),
  label: i64(batch.labels, [BATCH]),
});

interface State {
  w: Float64Array;
  b: Float64Array;
}

function startState(): State {
  return {
    w: Float64Array.from(pseudoRandom(CLASSES * FEATURES, 21, -0.5, 0.5).map(Math.fround)),
    b: Float64Array.from(pseudoRandom(CLASSES, 22, -0.5, 0.5).map(Math.fround)),
  };
}

async function stepOnce(plan: TrainingPlan, feeds: Record<string, Feed>): Promise<Record<string, Output>> {
  const s = await session(plan.trainStep);
  return run(s, feeds);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs((actual[i] as number) - (expected[i] as number)));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

describe('trainStep for logistic regression', () => {
  it('equals a hand-computed SGD step, with the mean loss and correct count of the batch', async () => {
    const plan = buildTrainingPlan(taskFor(logreg, { optimizer: { kind: 'sgd', learningRate: 0.5 } }));
    expect(plan.parameters).toEqual([
      { name: 'linear.weight', shape: [CLASSES, FEATURES] },
      { name: 'linear.bias', shape: [CLASSES] },
    ]);
    expect(plan.optimizerState).toEqual([]);
    const state = startState();
    const batch = batchFor(1);
    const results = await stepOnce(plan, {
      'linear.weight': f32(state.w, [CLASSES, FEATURES]),
      'linear.bias': f32(state.b, [CLASSES]),
      ...batchFeeds(batch),
      learning_rate: f32([0.5], []),
    });
    const grad = logregGradient(state.w, state.b, batch, CLASSES);
    expectClose(output(results, 'updated.linear.weight').data, state.w.map((w, i) => w - 0.5 * (grad.w[i] as number)), 2e-6);
    expectClose(output(results, 'updated.linear.bias').data, state.b.map((b, i) => b - 0.5 * (grad.b[i] as number)), 2e-6);
    const logits = logregLogits(state.w, state.b, batch, CLASSES);
    expect(output(results, 'loss').data[0]).toBeCloseTo(crossEntropy(logits, batch.labels, CLASSES), 5);
    const correct = batch.labels.filter((label, row) => {
      const scores = Array.from(logits.subarray(row * CLASSES, (row + 1) * CLASSES));
      return scores.indexOf(Math.max(...scores)) === label;
    }).length;
    expect(output(results, 'correct').data[0]).toBe(correct);
    expect(output(results, 'loss').dims).toEqual([]);
  });

  it('applies weight decay as PyTorch SGD does: g + wd * w', async () => {
    const plan = buildTrainingPlan(taskFor(logreg, { optimizer: { kind: 'sgd', learningRate: 0.3, weightDecay: 0.1 } }));
    const state = startState();
    const batch = batchFor(2);
    const results = await stepOnce(plan, {
      'linear.weight': f32(state.w, [CLASSES, FEATURES]),
      'linear.bias': f32(state.b, [CLASSES]),
      ...batchFeeds(batch),
      learning_rate: f32([0.3], []),
    });
    const grad = logregGradient(state.w, state.b, batch, CLASSES);
    expectClose(output(results, 'updated.linear.weight').data, state.w.map((w, i) => w - 0.3 * ((grad.w[i] as number) + 0.1 * w)), 2e-6);
  });
});

async function runOptimizer(optimizer: OptimizerSpec, steps: number): Promise<{ plan: TrainingPlan; results: Record<string, Output>[] }> {
  const plan = buildTrainingPlan(taskFor(logreg, { optimizer }));
  const s = await session(plan.trainStep);
  const state = startState();
  let feeds: Record<string, Feed> = {
    'linear.weight': f32(state.w, [CLASSES, FEATURES]),
    'linear.bias': f32(state.b, [CLASSES]),
    learning_rate: f32([optimizer.learningRate], []),
  };
  for (const info of plan.optimizerState) feeds[info.name] = f32(new Float64Array(info.shape.reduce((n, d) => n * d, 1)), info.shape);
  const results: Record<string, Output>[] = [];
  for (let step = 0; step < steps; step++) {
    const result = await run(s, { ...feeds, ...batchFeeds(batchFor(step + 3)) });
    results.push(result);
    feeds = { ...feeds };
    for (const info of [...plan.parameters, ...plan.optimizerState]) {
      feeds[info.name] = f32(output(result, `updated.${info.name}`).data, info.shape);
    }
  }
  return { plan, results };
}

describe('optimisers over several steps match float64 references of the PyTorch rules', () => {
  it('SGD with momentum and weight decay', async () => {
    const optimizer = { kind: 'sgd', learningRate: 0.2, momentum: 0.9, weightDecay: 0.01 } as const;
    const { plan, results } = await runOptimizer(optimizer, 4);
    expect(plan.optimizerState).toEqual([
      { name: 'momentum.linear.weight', shape: [CLASSES, FEATURES] },
      { name: 'momentum.linear.bias', shape: [CLASSES] },
    ]);
    const state = startState();
    const velocity = { w: new Float64Array(state.w.length), b: new Float64Array(state.b.length) };
    for (let step = 0; step < 4; step++) {
      const grad = logregGradient(state.w, state.b, batchFor(step + 3), CLASSES);
      sgdMomentumStep(state.w, velocity.w, grad.w, 0.2, 0.9, 0.01);
      sgdMomentumStep(state.b, velocity.b, grad.b, 0.2, 0.9, 0.01);
      const result = results[step] as Record<string, Output>;
      expectClose(output(result, 'updated.linear.weight').data, state.w, 1e-5);
      expectClose(output(result, 'updated.momentum.linear.weight').data, velocity.w, 1e-5);
      expectClose(output(result, 'updated.linear.bias').data, state.b, 1e-5);
    }
  });

  it('Adam with bias correction driven by the step-count state', async () => {
    const optimizer = { kind: 'adam', learningRate: 0.05, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 } as const;
    const { plan, results } = await runOptimizer(optimizer, 4);
    expect(plan.optimizerState.map((s) => s.name)).toEqual([
      'adam.m.linear.weight',
      'adam.v.linear.weight',
      'adam.m.linear.bias',
      'adam.v.linear.bias',
      'adam.step',
    ]);
    const state = startState();
    const moments = {
      mw: new Float64Array(state.w.length),
      vw: new Float64Array(state.w.length),
      mb: new Float64Array(state.b.length),
      vb: new Float64Array(state.b.length),
    };
    for (let step = 0; step < 4; step++) {
      const grad = logregGradient(state.w, state.b, batchFor(step + 3), CLASSES);
      adamStep(state.w, moments.mw, moments.vw, grad.w, step + 1, 0.05, 0.8, 0.99, 1e-6);
      adamStep(state.b, moments.mb, moments.vb, grad.b, step + 1, 0.05, 0.8, 0.99, 1e-6);
      const result = results[step] as Record<string, Output>;
      expect(output(result, 'updated.adam.step').data[0]).toBe(step + 1);
      expectClose(output(result, 'updated.adam.m.linear.weight').data, moments.mw, 1e-6);
      expectClose(output(result, 'updated.adam.v.linear.weight').data, moments.vw, 1e-6);
      expectClose(output(result, 'updated.linear.weight').data, state.w, 2e-5);
      expectClose(output(result, 'updated.linear.bias').data, state.b, 2e-5);
    }
  });
});

describe('FedProx', () => {
  const globalW = Float64Array.from(pseudoRandom(CLASSES * FEATURES, 31, -0.5, 0.5).map(Math.fround));
  const globalB = Float64Array.from(pseudoRandom(CLASSES, 32, -0.5, 0.5).map(Math.fround));

  async function proxStep(optimizer: OptimizerSpec, mu: number): Promise<Record<string, Output>> {
    const plan = buildTrainingPlan(taskFor(logreg, { optimizer, proximalMu: 0.5 }));
    const state = startState();
    return stepOnce(plan, {
      'linear.weight': f32(state.w, [CLASSES, FEATURES]),
      'linear.bias': f32(state.b, [CLASSES]),
      'global.linear.weight': f32(globalW, [CLASSES, FEATURES]),
      'global.linear.bias': f32(globalB, [CLASSES]),
      proximal_mu: f32([mu], []),
      ...batchFeeds(batchFor(5)),
      learning_rate: f32([optimizer.learningRate], []),
      ...Object.fromEntries(plan.optimizerState.map((s) => [s.name, f32(new Float64Array(s.shape.reduce((n, d) => n * d, 1)), s.shape)])),
    });
  }

  it('with mu > 0 the step is w - lr * (grad + mu * (w - w_global))', async () => {
    const results = await proxStep({ kind: 'sgd', learningRate: 0.4 }, 0.7);
    const state = startState();
    const grad = logregGradient(state.w, state.b, batchFor(5), CLASSES);
    expectClose(output(results, 'updated.linear.weight').data, state.w.map((w, i) => w - 0.4 * ((grad.w[i] as number) + 0.7 * (w - (globalW[i] as number)))), 2e-6);
    expectClose(output(results, 'updated.linear.bias').data, state.b.map((b, i) => b - 0.4 * ((grad.b[i] as number) + 0.7 * (b - (globalB[i] as number)))), 2e-6);
  });

  it('the proximal term also feeds momentum SGD', async () => {
    const results = await proxStep({ kind: 'sgd', learningRate: 0.4, momentum: 0.5 }, 0.7);
    const state = startState();
    const grad = logregGradient(state.w, state.b, batchFor(5), CLASSES);
    const proximal = state.w.map((w, i) => (grad.w[i] as number) + 0.7 * (w - (globalW[i] as number)));
    expectClose(output(results, 'updated.momentum.linear.weight').data, proximal, 2e-6);
    expectClose(output(results, 'updated.linear.weight').data, state.w.map((w, i) => w - 0.4 * (proximal[i] as number)), 2e-6);
  });

  it('with mu = 0 the step equals plain SGD exactly, and a task with proximalMu 0 has no proximal inputs', async () => {
    const proximal = await proxStep({ kind: 'sgd', learningRate: 0.4 }, 0);
    const plain = buildTrainingPlan(taskFor(logreg, { optimizer: { kind: 'sgd', learningRate: 0.4 } }));
    const state = startState();
    const reference = await stepOnce(plain, {
      'linear.weight': f32(state.w, [CLASSES, FEATURES]),
      'linear.bias': f32(state.b, [CLASSES]),
      ...batchFeeds(batchFor(5)),
      learning_rate: f32([0.4], []),
    });
    expect(Array.from(output(proximal, 'updated.linear.weight').data)).toEqual(Array.from(output(reference, 'updated.linear.weight').data));
    expect(Array.from(output(proximal, 'updated.linear.bias').data)).toEqual(Array.from(output(reference, 'updated.linear.bias').data));
    const inputs = (await session(plain.trainStep)).inputNames;
    expect(inputs.filter((name) => name.startsWith('global.') || name === 'proximal_mu')).toEqual([]);
  });
});

describe('trainBlock', () => {
  const configurations: [string, ModelSpec, OptimizerSpec, number][] = [
    ['mlp, SGD with momentum', { kind: 'mlp', inputShape: [FEATURES], hidden: [6], classes: CLASSES }, { kind: 'sgd', learningRate: 0.1, momentum: 0.9 }, 0],
    ['logreg, Adam with FedProx', logreg, { kind: 'adam', learningRate: 0.1 }, 0.3],
  ];
  for (const [name, spec, optimizer, proximalMu] of configurations) {
    it(`runs S steps in one call and equals S trainStep calls, optimiser state included (${name})`, async () => {
      const plan = buildTrainingPlan(taskFor(spec, { optimizer, proximalMu }));
      expect(plan.trainBlock).toBeDefined();
      const steps = 3;
      const fixed: Record<string, Feed> = { learning_rate: f32([0.1], []) };
      let offset = 0;
      for (const p of plan.parameters) {
        const size = p.shape.reduce((n, d) => n * d, 1);
        fixed[p.name] = f32(plan.initialParameters.subarray(offset, offset + size), p.shape);
        if (proximalMu > 0) fixed[`global.${p.name}`] = f32(pseudoRandom(size, offset + 5, -0.2, 0.2), p.shape);
        offset += size;
      }
      if (proximalMu > 0) fixed['proximal_mu'] = f32([proximalMu], []);
      for (const s of plan.optimizerState) fixed[s.name] = f32(new Float64Array(s.shape.reduce((n, d) => n * d, 1)), s.shape);
      const batches = Array.from({ length: steps }, (_, i) => batchFor(i + 7));
      const block = await run(await session(plan.trainBlock as Uint8Array), {
        ...fixed,
        input: f32(batches.flatMap((b) => Array.from(b.x)), [steps, BATCH, FEATURES]),
        label: i64(batches.flatMap((b) => b.labels), [steps, BATCH]),
      });
      const single = await session(plan.trainStep);
      let feeds: Record<string, Feed> = { ...fixed };
      let lossSum = 0;
      let correct = 0;
      for (const batch of batches) {
        const result = await run(single, { ...feeds, ...batchFeeds(batch) });
        lossSum += output(result, 'loss').data[0] as number;
        correct += output(result, 'correct').data[0] as number;
        feeds = { ...feeds };
        for (const info of [...plan.parameters, ...plan.optimizerState]) feeds[info.name] = f32(output(result, `updated.${info.name}`).data, info.shape);
      }
      for (const info of [...plan.parameters, ...plan.optimizerState]) {
        expectClose(output(block, `updated.${info.name}`).data, feeds[info.name]?.data as Float32Array, 1e-6);
      }
      expect(output(block, 'loss').data[0]).toBeCloseTo(lossSum, 5);
      expect(output(block, 'correct').data[0]).toBe(correct);
    });
  }
});
