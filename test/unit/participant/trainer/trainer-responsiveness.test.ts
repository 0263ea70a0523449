import { expect, it } from 'vitest';
import { buildTrainingPlan } from '../../../../model/index.js';
import { Trainer } from '../../../../participant/index.js';
import { digitsSplit, digitsTask } from '../../../support/digits-task.js';

it('trains in a worker thread: the main event loop keeps running during every session.run', async () => {
  const { train } = await digitsSplit();
  // A wide MLP and large batches make each session.run long enough that a 1 ms timer would fire at
  // most once per run if the runs blocked this thread (a timer can only fire between runs there).
  const plan = buildTrainingPlan(digitsTask({ kind: 'mlp', hidden: [4096] }));
  const trainer = await Trainer.create({ plan, device: 'cpu', stepsPerRun: 1 });
  try {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
    }, 1);
    let result;
    try {
      result = await trainer.train(plan.initialParameters, train, { epochs: 5, batchSize: 512, learningRate: 0.05, seed: 1 });
    } finally {
      clearInterval(timer);
    }
    expect(result.runs).toBe(5 * Math.ceil(train.count / 512));
    expect(ticks).toBeGreaterThan(3 * result.runs);
  } finally {
    await trainer.close();
  }
});
