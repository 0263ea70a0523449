/**
 * The DP-SGD loop (participant/trainer/dp-sgd.ts) on the digits MLP, run on the main thread with the
 * plan's real graphs: with C huge, zero noise and q = 1 it is exactly full-batch SGD (the divisor is
 * q N); the noise comes from the injected function with std sigma * C and the default is the snapped
 * sampler (grid 2^-24, the requested std); an empty Poisson sample still applies the noise-only step;
 * sampling does not follow any seed; graphs have no random op; a too-large batch is refused.
 */
import { describe, expect, it } from 'vitest';
import { Tensor } from 'onnxruntime-node';
import { buildTrainingPlan, type TaskDocument, type TrainingPlan } from '../../../../model/index.js';
import { decodeModel } from '../../../../model/onnx/codec.js';
import { RandomSource } from '../../../../crypto/quantize.js';
import { RandomWords } from '../../../../crypto/dp/index.js';
import { DpSgdRunner, snappedNoise, type DpSgdOptions, type GatherFeeds } from '../../../../participant/trainer/dp-sgd.js';
import { PoissonSampler } from '../../../../participant/trainer/poisson.js';
import { checkPlanBytes, planLayout } from '../../../../participant/trainer/plan.js';
import type { Dataset } from '../../../../participant/index.js';
import { digitsSplit, digitsTask } from '../../../support/digits-task.js';
import { f32, i64, output, run, session } from '../../../support/model/ort.js';

type RecordLevel = NonNullable<NonNullable<TaskDocument['privacy']>['recordLevel']>;

function dpTask(recordLevel: RecordLevel, optimizer: TaskDocument['optimizer'] = { kind: 'sgd', learningRate: 0.5 }): TaskDocument {
  return { ...digitsTask({ kind: 'mlp', hidden: [16] }, {}, optimizer), privacy: { recordLevel } };
}

/** The first `count` digits, as a small data set the tests can feed by hand. */
async function smallDigits(count: number): Promise<Dataset> {
  const { train } = await digitsSplit();
  return { ...train, features: train.features.slice(0, count * 64), labels: train.labels.slice(0, count), count };
}

function gatherFrom(data: Dataset): GatherFeeds {
  return (indices, count) => {
    const input = new Float32Array(count * 64);
    const labels = new BigInt64Array(count);
    for (let row = 0; row < count; row++) {
      const example = indices[row] as number;
      input.set(data.features.subarray(example * 64, example * 64 + 64), row * 64);
      labels[row] = BigInt(data.labels[example] as number);
    }
    return { input: new Tensor('float32', input, [count, 64]), label: new Tensor('int64', labels, [count]) };
  };
}

async function runnerFor(plan: TrainingPlan, options: DpSgdOptions = {}): Promise<DpSgdRunner> {
  const dp = plan.dpSgd;
  if (dp === undefined) throw new Error('plan has no dpSgd');
  return new DpSgdRunner(await session(dp.gradientSum), await session(dp.update), planLayout(plan), dp, options);
}

const zeroNoise = (): void => {};

describe('a DP-SGD step', () => {
  const OPTIMIZERS: readonly (readonly [string, TaskDocument['optimizer'], number])[] = [
    ['SGD with momentum and weight decay', { kind: 'sgd', learningRate: 0.3, momentum: 0.9, weightDecay: 0.01 }, 0],
    ['Adam', { kind: 'adam', learningRate: 0.01 }, 0],
    ['plain SGD with FedProx', { kind: 'sgd', learningRate: 0.3 }, 0.5],
  ];
  for (const [what, optimizer, proximalMu] of OPTIMIZERS) it(`with C huge, zero noise and q = 1 equals full-batch training (sum / (q N) = the batch mean): ${what}`, async () => {
    const data = await smallDigits(40);
    const task = dpTask({ clipNorm: 1e6, noiseMultiplier: 1, samplingRate: 1, stepsPerRound: 3 }, optimizer);
    const plan = buildTrainingPlan({ ...task, training: { ...task.training, proximalMu } });
    const runner = await runnerFor(plan, { noise: zeroNoise });
    // The FedProx anchor is a perturbed start, so the proximal term is not zero at the first step.
    const anchor = plan.initialParameters.map((v, i) => v + 0.05 * Math.sin(i));
    const result = await runner.train(plan.initialParameters, anchor, { learningRate: optimizer.learningRate, proximalMu }, data.count, gatherFrom(data), () => false);

    const plain = await session(plan.trainStep);
    const layout = planLayout(plan);
    let state = new Float32Array(layout.totalSize);
    state.set(plan.initialParameters);
    const all = [...layout.parameters, ...layout.optimizerState];
    const everything = gatherFrom(data)(Int32Array.from({ length: data.count }, (_, i) => i), data.count);
    for (let step = 0; step < 3; step++) {
      const feeds: Record<string, ReturnType<typeof f32>> = { learning_rate: f32([optimizer.learningRate], []) };
      for (const t of all) feeds[t.name] = f32(state.subarray(t.offset, t.offset + t.size), t.shape);
      if (proximalMu > 0) {
        feeds['proximal_mu'] = f32([proximalMu], []);
        for (const t of layout.parameters) feeds[`global.${t.name}`] = f32(anchor.subarray(t.offset, t.offset + t.size), t.shape);
      }
      const out = await run(plain, { ...feeds, input: f32(everything['input']?.data as Float32Array, [data.count, 64]), label: i64(Array.from(data.labels), [data.count]) });
      const next = new Float32Array(layout.totalSize);
      for (const t of all) next.set(output(out, `updated.${t.name}`).data, t.offset);
      state = next;
    }
    let worst = 0;
    for (let i = 0; i < layout.parameterSize; i++) worst = Math.max(worst, Math.abs((result.parameters[i] as number) - (state[i] as number)));
    expect(worst).toBeLessThan(2e-5);
    expect(result.accounting).toMatchObject({ samplingRate: 1, noiseMultiplier: 1, clipNorm: 1e6, stepsRun: 3, dimension: layout.parameterSize, gridExponent: 24, trainingExamples: 40, sampledExamples: 120 });
    // And the parameters moved: the comparison is not between two copies of the start.
    expect(result.parameters.some((v, i) => Math.abs(v - (plan.initialParameters[i] as number)) > 1e-3)).toBe(true);
  });

  it('adds noise of std sigma * C once per step through the noise function; the snapped sampler releases the sum on its 2^-24 grid', async () => {
    const data = await smallDigits(30);
    const spec = { clipNorm: 0.5, noiseMultiplier: 1.5, samplingRate: 0.2, stepsPerRound: 2 };
    const plan = buildTrainingPlan(dpTask(spec));
    const calls: { std: number; before: Float64Array; after: Float64Array }[] = [];
    const runner = await runnerFor(plan, {
      noise: (values, std) => {
        const before = values.slice();
        snappedNoise(values, std);
        calls.push({ std, before, after: values.slice() });
      },
    });
    await runner.train(plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, data.count, gatherFrom(data), () => false);
    expect(calls).toHaveLength(2);
    for (const call of calls) {
      expect(call.std).toBe(0.75);
      const noise = Array.from(call.after, (v, i) => v - (call.before[i] as number));
      const mean = noise.reduce((n, v) => n + v, 0) / noise.length;
      const std = Math.sqrt(noise.reduce((n, v) => n + (v - mean) ** 2, 0) / noise.length);
      // d ~ 1200 coordinates: the sample std has a relative standard error of 1/sqrt(2d), about 2 %; the
      // bound is 6 of them (a sound sampler fails it with probability ~2e-9, one off by sqrt(2) always does).
      expect(noise.length).toBeGreaterThan(1000);
      expect(Math.abs(std / 0.75 - 1)).toBeLessThan(6 / Math.sqrt(2 * noise.length));
      expect(Math.abs(mean)).toBeLessThan((6 * 0.75) / Math.sqrt(noise.length));
      // The released sum lies on the snapped grid 2^-24.
      for (const v of call.after) expect(Number.isInteger(v * 2 ** 24)).toBe(true);
    }
  });

  it('an empty Poisson sample skips the gradient graph and applies the noise-only step; the default noise has std sigma * C', async () => {
    const data = await smallDigits(20);
    const spec = { clipNorm: 2, noiseMultiplier: 1.25, samplingRate: 2 ** -40, stepsPerRound: 1 };
    const plan = buildTrainingPlan(dpTask(spec, { kind: 'sgd', learningRate: 1 }));
    const sizes: number[] = [];
    const runner = await runnerFor(plan, { onStep: (_step, batch) => sizes.push(batch) });
    const result = await runner.train(plan.initialParameters, plan.initialParameters, { learningRate: 1, proximalMu: 0 }, data.count, gatherFrom(data), () => false);
    expect(sizes).toEqual([0]);
    expect(result.accounting.sampledExamples).toBe(0);
    // w' = w - lr * noise / (q N): recover the noise and check its std (the default snapped sampler).
    const expectedBatch = spec.samplingRate * data.count;
    const noise = Array.from(result.parameters, (v, i) => (((plan.initialParameters[i] as number) - v) * expectedBatch));
    const std = Math.sqrt(noise.reduce((n, v) => n + v * v, 0) / noise.length);
    // Unseeded (the default draws from node:crypto): 6 relative standard errors, 1/sqrt(2d) each.
    expect(Math.abs(std / 2.5 - 1)).toBeLessThan(6 / Math.sqrt(2 * noise.length));
  });

  it('samples by node:crypto, not by any seed: two runs from the same start with zero noise differ', async () => {
    const data = await smallDigits(50);
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.3, stepsPerRound: 4 }));
    const runner = await runnerFor(plan, { noise: zeroNoise });
    const args = [plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, data.count, gatherFrom(data), () => false] as const;
    const first = await runner.train(...args);
    const second = await runner.train(...args);
    expect(Array.from(first.parameters)).not.toEqual(Array.from(second.parameters));
  });

  it('refuses a sampler whose rate is not the task\'s, and a batch whose per-example gradients exceed the memory bound', async () => {
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5, stepsPerRound: 1 }));
    await expect(runnerFor(plan, { sampler: new PoissonSampler(0.25) })).rejects.toThrow(/rate 0.25 is not the task's samplingRate 0.5/);
    const runner = await runnerFor(plan);
    // q N = 0.5 * 2e6 examples x ~1200 values x 12 bytes >> 2 GiB: refused before any step.
    const huge = 2_000_000;
    await expect(runner.train(plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, huge, () => ({}), () => false)).rejects.toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      message: expect.stringMatching(/examples x \d+ trainable values need about [\d.]+ GiB/) as unknown,
    });
  });

  it('draws every step\'s batch from the injected sampler, once per step', async () => {
    const data = await smallDigits(30);
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.25, stepsPerRound: 5 }));
    let calls = 0;
    class CountingSampler extends PoissonSampler {
      override sample(count: number, out: Int32Array): number {
        calls++;
        return super.sample(count, out);
      }
    }
    const sizes: number[] = [];
    const sampler = new CountingSampler(0.25, new RandomWords(RandomSource.seeded(new Uint8Array(32).fill(1))));
    const runner = await runnerFor(plan, { sampler, noise: zeroNoise, onStep: (_s, b) => sizes.push(b) });
    const result = await runner.train(plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, data.count, gatherFrom(data), () => false);
    expect(calls).toBe(5);
    expect(result.accounting.sampledExamples).toBe(sizes.reduce((a, b) => a + b, 0));
    // The same seeded sampler again gives the same batches and so, with zero noise, the same model.
    const again = await runnerFor(plan, { sampler: new PoissonSampler(0.25, new RandomWords(RandomSource.seeded(new Uint8Array(32).fill(1)))), noise: zeroNoise });
    const repeated = await again.train(plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, data.count, gatherFrom(data), () => false);
    expect(Array.from(repeated.parameters)).toEqual(Array.from(result.parameters));
  });

  it('stops when aborted and releases nothing (no accounting for an unreleased model)', async () => {
    const data = await smallDigits(20);
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5, stepsPerRound: 10 }));
    const runner = await runnerFor(plan);
    let steps = 0;
    await expect(runner.train(plan.initialParameters, plan.initialParameters, { learningRate: 0.5, proximalMu: 0 }, data.count, gatherFrom(data), () => ++steps >= 3)).rejects.toMatchObject({
      code: 'CANCELLED',
      message: expect.stringContaining('after 3 of 10 DP-SGD steps') as unknown,
    });
  });

  it('a plan whose dpSgd parameters are out of range is refused before the worker starts', () => {
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5, stepsPerRound: 1 }));
    const dp = plan.dpSgd;
    if (dp === undefined) throw new Error('no dpSgd');
    expect(() => checkPlanBytes(plan)).not.toThrow();
    for (const bad of [{ samplingRate: 1.5 }, { noiseMultiplier: 0 }, { clipNorm: -1 }, { stepsPerRound: 0.5 }, { dimension: 0 }, { update: new Uint8Array(0) }]) {
      expect(() => checkPlanBytes({ ...plan, dpSgd: { ...dp, ...bad } }), JSON.stringify(bad)).toThrow(/plan\.dpSgd/);
    }
  });

  it('the DP graphs draw no random numbers themselves (no RandomNormal/RandomUniform/Bernoulli/Multinomial)', () => {
    const plan = buildTrainingPlan(dpTask({ clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.5, stepsPerRound: 1 }));
    for (const bytes of [plan.dpSgd?.gradientSum, plan.dpSgd?.update]) {
      const ops = new Set(decodeModel(bytes as Uint8Array).graph.nodes.map((n) => n.opType));
      expect(ops.size).toBeGreaterThan(3);
      for (const random of ['RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Bernoulli', 'Multinomial']) expect(ops.has(random)).toBe(false);
    }
  });
});

describe('Poisson sampling', () => {
  it('batch sizes have mean q N and binomial variance N q (1 - q); each example is taken at rate q', () => {
    const n = 200;
    const q = 0.1;
    const steps = 4000;
    const sampler = new PoissonSampler(q, new RandomWords(RandomSource.seeded(new Uint8Array(32).fill(7))));
    const out = new Int32Array(n);
    const sizes: number[] = [];
    const perExample = new Float64Array(n);
    for (let s = 0; s < steps; s++) {
      const size = sampler.sample(n, out);
      sizes.push(size);
      for (let i = 0; i < size; i++) {
        perExample[out[i] as number] = (perExample[out[i] as number] as number) + 1;
        if (i > 0) expect(out[i] as number).toBeGreaterThan(out[i - 1] as number);
      }
    }
    const mean = sizes.reduce((a, b) => a + b, 0) / steps;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (steps - 1);
    const expectedVariance = n * q * (1 - q);
    // Standard errors: mean sqrt(18 / 4000) = 0.067; variance about 18 * sqrt(2 / 4000) = 0.4.
    expect(Math.abs(mean - n * q)).toBeLessThan(0.3);
    expect(Math.abs(variance - expectedVariance)).toBeLessThan(2);
    // Every example's own rate (binomial(4000, 0.1), sd 19): no example is favoured or left out.
    for (const count of perExample) expect(Math.abs(count - steps * q)).toBeLessThan(6 * Math.sqrt(steps * q * (1 - q)));
    // Pairs are independent: two neighbours are taken together at rate q^2.
    let together = 0;
    const pairs = new Int32Array(n);
    const sampler2 = new PoissonSampler(q, new RandomWords(RandomSource.seeded(new Uint8Array(32).fill(9))));
    for (let s = 0; s < steps; s++) {
      const size = sampler2.sample(n, pairs);
      const taken = new Set(Array.from(pairs.subarray(0, size)));
      if (taken.has(0) && taken.has(1)) together++;
    }
    expect(Math.abs(together - steps * q * q)).toBeLessThan(6 * Math.sqrt(steps * q * q));
  });

  it('takes exactly q for rates whose binary expansion goes past the first word (q = 1/3), and everything at q = 1', () => {
    const sampler = new PoissonSampler(1 / 3, new RandomWords(RandomSource.seeded(new Uint8Array(32).fill(3))));
    const out = new Int32Array(30000);
    const size = sampler.sample(30000, out);
    expect(Math.abs(size - 10000)).toBeLessThan(6 * Math.sqrt(30000 * (1 / 3) * (2 / 3)));
    expect(new PoissonSampler(1).sample(5, new Int32Array(5))).toBe(5);
    expect(() => new PoissonSampler(0)).toThrow(/samplingRate must be in \(0, 1\]/);
    expect(() => new PoissonSampler(1.5)).toThrow(/samplingRate must be in \(0, 1\]/);
  });
});
