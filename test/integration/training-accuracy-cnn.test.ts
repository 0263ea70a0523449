/**
 * The zoo CNN (McMahan et al. 2017) on Fashion-MNIST: the longest accuracy test of local training, in a
 * file of its own so that it runs beside the other test files. One epoch of 60,000 images at batch 32 is
 * 1,875 steps of the full training graph (two convolutions and their gradients), about a minute or two
 * on one core.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, parseTaskDocument } from '../../model/index.js';
import { Trainer, loadIdxDataset, normalize } from '../../participant/index.js';
import { FASHION_MNIST_DIR, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const fashion = checkSystemDependency(systemDependencies.fashionMnist);

describe.skipIf(fashion.skip)(`Fashion-MNIST CNN ${fashion.reason}`, () => {
  it('the zoo CNN reaches >= 83% test accuracy after 1 epoch (batch 32, SGD lr 0.05)', async () => {
    // Mean and standard deviation of the Fashion-MNIST training pixels, in raw 0..255 units.
    const normalization = { mean: [72.94], std: [90.02] };
    const load = async (prefix: string) =>
      normalize(await loadIdxDataset({ images: `${FASHION_MNIST_DIR}/${prefix}-images-idx3-ubyte.gz`, labels: `${FASHION_MNIST_DIR}/${prefix}-labels-idx1-ubyte.gz` }), normalization);
    const [train, test] = await Promise.all([load('train'), load('t10k')]);
    expect(train.exampleShape).toEqual([1, 28, 28]);
    const task = parseTaskDocument({
      formatVersion: 1,
      model: { kind: 'cnn', inputShape: [1, 28, 28], classes: 10 },
      loss: 'cross_entropy',
      input: { shape: [1, 28, 28], dtype: 'float32' },
      normalization,
      labels: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
      optimizer: { kind: 'sgd', learningRate: 0.05 },
      training: { epochs: 1, batchSize: 32, proximalMu: 0, seed: 1 },
    });
    const plan = buildTrainingPlan(task);
    const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
    try {
      const result = await trainer.train(plan.initialParameters, train, { epochs: 1, batchSize: 32, learningRate: 0.05, seed: 1 });
      expect(result.steps).toBe(1875);
      const evaluation = await trainer.evaluate(result.parameters, test, { batchSize: 500 });
      expect(evaluation.examples).toBe(10_000);
      expect(evaluation.correct / evaluation.examples).toBeGreaterThanOrEqual(0.83);
    } finally {
      await trainer.close();
    }
  }, 900_000);
});
