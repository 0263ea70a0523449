import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTrainingPlan, type TrainingPlan } from '../../../../model/index.js';
import { type Dataset, type ProgressEvent, Trainer, TrainerError, createDataset } from '../../../../participant/index.js';
import { digitsSplit, digitsTask } from '../../../support/digits-task.js';

let train: Dataset;
let test: Dataset;
let plan: TrainingPlan;
let trainer: Trainer;

beforeAll(async () => {
  ({ train, test } = await digitsSplit());
  plan = buildTrainingPlan(digitsTask());
  trainer = await Trainer.create({ plan, device: 'cpu' });
});

afterAll(async () => {
  await trainer.close();
});

const options = { epochs: 2, batchSize: 32, learningRate: 0.5, seed: 3 };

describe('Trainer (logistic regression on the digits)', () => {
  it('learns: training lowers the loss and test accuracy is far above chance', async () => {
    const before = await trainer.evaluate(plan.initialParameters, test);
    const result = await trainer.train(plan.initialParameters, train, { ...options, epochs: 10 });
    const after = await trainer.evaluate(result.parameters, test);
    expect(result.examples).toBe(train.count);
    expect(result.steps).toBe(10 * Math.ceil(train.count / 32));
    expect(after.examples).toBe(test.count);
    expect(after.lossSum).toBeLessThan(before.lossSum / 3);
    expect(after.correct / after.examples).toBeGreaterThan(0.9);
    expect(result.trainAccuracy).toBeGreaterThan(0.85);
    expect(result.meanLoss).toBeGreaterThan(0);
  });

  it('evaluates the same whatever the batch size (the last batch may be partial)', async () => {
    const trained = await trainer.train(plan.initialParameters, train, options);
    const whole = await trainer.evaluate(trained.parameters, test, test.count);
    for (const batchSize of [1, 7, 256]) {
      const batched = await trainer.evaluate(trained.parameters, test, { batchSize });
      expect(batched.correct).toBe(whole.correct);
      expect(batched.lossSum).toBeCloseTo(whole.lossSum, 2);
    }
  });

  it('is deterministic per seed, and the seed changes the batch order', async () => {
    const a = await trainer.train(plan.initialParameters, train, options);
    const b = await trainer.train(plan.initialParameters, train, options);
    const c = await trainer.train(plan.initialParameters, train, { ...options, seed: 4 });
    expect(b.parameters).toEqual(a.parameters);
    expect(c.parameters).not.toEqual(a.parameters);
    expect(a.parameters).not.toEqual(plan.initialParameters);
  });

  it('leaves the caller\'s arrays untouched and keeps datasets usable on the main thread', async () => {
    const start = plan.initialParameters.slice();
    const firstFeature = train.features[0];
    await trainer.train(start, train, options);
    expect(start).toEqual(plan.initialParameters);
    expect(train.features[0]).toBe(firstFeature);
    expect(train.features.length).toBe(train.count * 64);
  });

  it('reports progress: step events, one epoch event per epoch, monotonic steps', async () => {
    const events: ProgressEvent[] = [];
    const result = await trainer.train(plan.initialParameters, train, { ...options, epochs: 3, progressIntervalMs: 0, onProgress: (e) => events.push(e) });
    const epochs = events.filter((e) => e.kind === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(events.filter((e) => e.kind === 'step').length).toBeGreaterThan(0);
    for (let i = 1; i < events.length; i++) expect((events[i] as ProgressEvent).step).toBeGreaterThanOrEqual((events[i - 1] as ProgressEvent).step);
    const last = events.at(-1) as ProgressEvent;
    expect(last).toMatchObject({ kind: 'epoch', epoch: 3, epochs: 3, step: result.steps, totalSteps: result.steps, examplesSeen: 3 * train.count });
    for (const e of events) {
      expect(Number.isFinite(e.loss) && e.loss > 0).toBe(true);
      expect(e.accuracy >= 0 && e.accuracy <= 1).toBe(true);
    }
  });

  it('validates its arguments, naming the option and the bad value', async () => {
    const p = plan.initialParameters;
    await expect(trainer.train(p, train, { ...options, epochs: 0 })).rejects.toThrow('epochs must be an integer in [1, 1000000], got 0');
    await expect(trainer.train(p, train, { ...options, batchSize: 1.5 })).rejects.toThrow('batchSize must be an integer');
    await expect(trainer.train(p, train, { ...options, learningRate: Number.NaN })).rejects.toThrow('learningRate must be a finite number > 0, got NaN');
    await expect(trainer.train(p, train, { ...options, seed: -1 })).rejects.toThrow('seed must be an integer');
    await expect(trainer.train(p.subarray(1), train, options)).rejects.toThrow(`parameters must be a Float32Array of ${p.length} values (the plan's parameters), got ${p.length - 1} values`);
    const withNaN = p.slice();
    withNaN[5] = Number.NaN;
    await expect(trainer.train(withNaN, train, options)).rejects.toThrow(`parameters[5] (${plan.parameters[0]?.name}[5]) is NaN; expected finite values`);
    const wrongShape = createDataset({ features: new Float32Array(63 * 2), labels: Int32Array.of(0, 1), exampleShape: [63], classes: 10 });
    await expect(trainer.train(p, wrongShape, options)).rejects.toThrow("dataset examples have 63 values; the model's input [64] needs 64");
    await expect(trainer.train(p, train, { ...options, proximalMu: 0.1 })).rejects.toMatchObject({ reason: 'PLAN_MISMATCH' });
    // The trainer is still usable after rejected calls.
    await expect(trainer.evaluate(p, test, 100)).resolves.toMatchObject({ examples: test.count });
    await expect(trainer.evaluate(p, test, 0)).rejects.toThrow('batchSize must be an integer in [1, 1048576], got 0');
  });

  it('stops on a diverging loss instead of returning NaN parameters', async () => {
    const huge = plan.initialParameters.map(() => 3e38); // logits overflow float32
    const error = await trainer.train(huge, train, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainerError);
    expect(error).toMatchObject({ code: 'ABORTED', reason: 'TRAINING_DIVERGED' });
    expect((error as Error).message).toMatch(/^epoch 1, steps? 1(-\d+)?: the training loss is (NaN|Infinity)/);
  });

  it('an AbortSignal cancels training; the trainer keeps working', async () => {
    const controller = new AbortController();
    const cancelled = trainer.train(plan.initialParameters, train, {
      ...options,
      epochs: 50,
      progressIntervalMs: 0,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(cancelled).rejects.toMatchObject({ code: 'CANCELLED', reason: 'TRAINING_ABORTED' });
    await expect(trainer.train(plan.initialParameters, train, { ...options, signal: controller.signal })).rejects.toThrow('aborted by the caller before it started');
    await expect(trainer.train(plan.initialParameters, train, options)).resolves.toMatchObject({ examples: train.count });
  });

  it('queues concurrent calls and runs them one at a time', async () => {
    const [a, b, c] = await Promise.all([
      trainer.train(plan.initialParameters, train, options),
      trainer.evaluate(plan.initialParameters, test),
      trainer.train(plan.initialParameters, train, options),
    ]);
    expect(c.parameters).toEqual(a.parameters);
    expect(b.examples).toBe(test.count);
  });
});

describe('Trainer lifecycle', () => {
  it('close() rejects the call in flight and every later call with CANCELLED', async () => {
    const own = await Trainer.create({ plan, device: 'cpu' });
    const pending = own.train(plan.initialParameters, train, { ...options, epochs: 1000 });
    const queued = own.evaluate(plan.initialParameters, test);
    await own.close();
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED', reason: 'TRAINER_CLOSED' });
    await expect(queued).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(own.train(plan.initialParameters, train, options)).rejects.toMatchObject({ reason: 'TRAINER_CLOSED' });
    await own.close(); // idempotent
  });

  it("device 'auto' falls back to the CPU and logs which device it uses and why", async () => {
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const log = (fields: Record<string, unknown>, message: string): void => {
      lines.push({ fields, message });
    };
    const own = await Trainer.create({ plan, device: 'auto', logger: { info: log, warn: log } });
    try {
      expect(own.info.provider).toBe('cpu');
      expect(own.info.fallbackReason).toContain('CUDA execution provider');
      expect(lines).toHaveLength(1);
      expect(lines[0]?.message).toMatch(/^training on CPU: the CUDA execution provider (is not installed|failed to start)/);
      expect(lines[0]?.fields).toMatchObject({ device: 'auto', provider: 'cpu' });
      await expect(own.train(plan.initialParameters, train, options)).resolves.toMatchObject({ examples: train.count });
    } finally {
      await own.close();
    }
  });

  it('a plan whose tensors the graph does not have is rejected naming the tensor', async () => {
    const renamed = { ...plan, parameters: plan.parameters.map((t, i) => (i === 0 ? { ...t, name: 'no.such.weight' } : t)) };
    await expect(Trainer.create({ plan: renamed, device: 'cpu' })).rejects.toThrow("plan.trainStep has no input 'no.such.weight'");
    const swapped = { ...plan, evalStep: plan.trainStep };
    await expect(Trainer.create({ plan: swapped, device: 'cpu' })).rejects.toThrow("plan.evalStep has no output 'loss_sum'");
  });
});

describe('Trainer with optimizer state, FedProx and multi-step blocks', () => {
  it('trains with momentum and with Adam (optimizer state starts at zero every call)', async () => {
    for (const optimizer of [
      { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
      { kind: 'adam', learningRate: 0.01 },
    ] as const) {
      const statefulPlan = buildTrainingPlan(digitsTask({ kind: 'logreg' }, {}, optimizer));
      expect(statefulPlan.optimizerState.length).toBeGreaterThan(0);
      const own = await Trainer.create({ plan: statefulPlan, device: 'cpu' });
      try {
        const first = await own.train(statefulPlan.initialParameters, train, { ...options, learningRate: optimizer.learningRate });
        const again = await own.train(statefulPlan.initialParameters, train, { ...options, learningRate: optimizer.learningRate });
        expect(again.parameters).toEqual(first.parameters);
        const evaluation = await own.evaluate(first.parameters, test);
        expect(evaluation.correct / evaluation.examples).toBeGreaterThan(0.85);
      } finally {
        await own.close();
      }
    }
  });

  it('FedProx: a large proximal weight keeps the local model near the global one', async () => {
    const proxPlan = buildTrainingPlan(digitsTask({ kind: 'logreg' }, { proximalMu: 0.5 }));
    const own = await Trainer.create({ plan: proxPlan, device: 'cpu' });
    const distance = (a: Float32Array, b: Float32Array): number => Math.sqrt(a.reduce((sum, x, i) => sum + (x - (b[i] as number)) ** 2, 0));
    try {
      const global = proxPlan.initialParameters;
      const free = await own.train(global, train, { ...options, proximalMu: 0 });
      const anchored = await own.train(global, train, { ...options, proximalMu: 1 });
      expect(distance(anchored.parameters, global)).toBeLessThan(0.8 * distance(free.parameters, global));
      // An explicit anchor elsewhere pulls the model towards that anchor instead.
      const elsewhere = free.parameters;
      const pulled = await own.train(global, train, { ...options, proximalMu: 1, globalParameters: elsewhere });
      expect(distance(pulled.parameters, elsewhere)).toBeLessThan(distance(anchored.parameters, elsewhere));
    } finally {
      await own.close();
    }
  });

  it('trainBlock (several steps per run) computes what single steps compute', async () => {
    // buildTrainingPlan always builds a trainBlock: were it missing, this test must fail, not skip.
    expect(plan.trainBlock).toBeDefined();
    const single = await Trainer.create({ plan, device: 'cpu', stepsPerRun: 1 });
    const blocked = await Trainer.create({ plan, device: 'cpu', stepsPerRun: 8 });
    try {
      expect(single.info.stepsPerRun).toBe(1);
      expect(blocked.info.stepsPerRun).toBe(8);
      const a = await single.train(plan.initialParameters, train, options);
      const b = await blocked.train(plan.initialParameters, train, options);
      expect(b.steps).toBe(a.steps);
      // Per epoch: blocks of 8 full batches while they fit, then single steps (the last one partial).
      const fullBatches = Math.floor(train.count / 32);
      const blocks = Math.floor(fullBatches / 8);
      const singles = fullBatches - 8 * blocks + (train.count % 32 === 0 ? 0 : 1);
      expect(blocks).toBeGreaterThan(0);
      expect(b.runs).toBe(options.epochs * (blocks + singles));
      expect(a.runs).toBe(a.steps);
      let maxDifference = 0;
      for (let i = 0; i < a.parameters.length; i++) maxDifference = Math.max(maxDifference, Math.abs((a.parameters[i] as number) - (b.parameters[i] as number)));
      expect(maxDifference).toBeLessThan(1e-4);
      expect(b.meanLoss).toBeCloseTo(a.meanLoss, 4);
      expect(b.trainAccuracy).toBe(a.trainAccuracy);
    } finally {
      await Promise.all([single.close(), blocked.close()]);
    }
  });
});
