/**
 * End-to-end accuracy of local training: model/ builds the training graphs, participant/ loads real data
 * and trains in its worker on ONNX Runtime, with one intra-op thread (two cores are shared by the whole
 * suite) and the trainer's default choice between trainBlock and single steps. The CNN, the longest of
 * these tests, has its own file (training-accuracy-cnn.test.ts) so that it runs beside the others.
 */
import { describe, expect, it } from 'vitest';
import { type ModelSpec, type OptimizerSpec, type TaskDocument, buildTrainingPlan, parseTaskDocument } from '../../model/index.js';
import {
  type Dataset,
  DIGITS_LABELS,
  Trainer,
  loadDigits,
  loadIdxDataset,
  normalize,
  reshapeExamples,
  trainTestSplit,
} from '../../participant/index.js';
import { FASHION_MNIST_DIR, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function task(
  model: ModelSpec,
  inputShape: number[],
  normalization: TaskDocument['normalization'],
  optimizer: OptimizerSpec,
  training: TaskDocument['training'],
  labels: readonly string[] = FASHION_LABELS,
): TaskDocument {
  return parseTaskDocument({
    formatVersion: 1,
    model,
    loss: 'cross_entropy',
    input: { shape: inputShape, dtype: 'float32' },
    normalization,
    labels: [...labels],
    optimizer,
    training,
  });
}

/** Trains a task from its initial parameters and returns the test accuracy. */
async function trainAndTest(doc: TaskDocument, train: Dataset, test: Dataset): Promise<number> {
  const plan = buildTrainingPlan(doc);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
  try {
    const { epochs, batchSize, seed } = doc.training;
    const result = await trainer.train(plan.initialParameters, train, { epochs, batchSize, seed, learningRate: doc.optimizer.learningRate });
    expect(result.steps).toBe(epochs * Math.ceil(train.count / batchSize));
    const evaluation = await trainer.evaluate(result.parameters, test, { batchSize: 1000 });
    expect(evaluation.examples).toBe(test.count);
    return evaluation.correct / evaluation.examples;
  } finally {
    await trainer.close();
  }
}

/**
 * The digits floor must separate a working MLP from the same MLP reduced to a linear model, which does
 * well on digits too. Measured on this split (test set 359 images), SGD batch 32, seeds 1-8:
 * - 30 epochs, lr 0.1 (this test's former settings): MLP 343-347 correct (95.5-96.7%), linear 335-341
 *   (93.3-95.0%), and the linear model trained 100 epochs at lr 0.05 reached 344 (95.8%): the former 95%
 *   floor passed with the hidden layer gone.
 * - 100 epochs, lr 0.2 (below): MLP 347-350 correct (96.7-97.5%), linear 343-345 (95.5-96.1%).
 * The floor sits on the mean over seeds 1-3 (MLP 97.4%, linear 95.6%), about 0.9 points from either side.
 */
const DIGITS_SEEDS = [1, 2, 3];
const DIGITS_MEAN_FLOOR = 0.965;

/** Test accuracy per seed (initial weights and shuffling); one trainer serves every seed, as the graphs are the same. */
async function digitsAccuracies(model: ModelSpec): Promise<number[]> {
  const scaling = { scale: 1 / 16, offset: 0 };
  const digits = normalize(await loadDigits(), scaling);
  const { train, test } = trainTestSplit(digits, { testFraction: 0.2, seed: 1, stratify: true });
  const docs = DIGITS_SEEDS.map((seed) => task(model, [64], scaling, { kind: 'sgd', learningRate: 0.2 }, { epochs: 100, batchSize: 32, proximalMu: 0, seed }, DIGITS_LABELS));
  const trainer = await Trainer.create({ plan: buildTrainingPlan(docs[0] as TaskDocument), device: 'cpu', intraOpThreads: 1 });
  try {
    const accuracies: number[] = [];
    for (const doc of docs) {
      const { epochs, batchSize, seed } = doc.training;
      const result = await trainer.train(buildTrainingPlan(doc).initialParameters, train, { epochs, batchSize, seed, learningRate: doc.optimizer.learningRate });
      expect(result.steps).toBe(epochs * Math.ceil(train.count / batchSize));
      const evaluation = await trainer.evaluate(result.parameters, test, { batchSize: 1000 });
      expect(evaluation.examples).toBe(test.count);
      accuracies.push(evaluation.correct / evaluation.examples);
    }
    return accuracies;
  } finally {
    await trainer.close();
  }
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

describe('the zoo MLP on the shipped digits', () => {
  it(`reaches >= ${DIGITS_MEAN_FLOOR * 100}% mean test accuracy over ${DIGITS_SEEDS.length} seeds, each >= 95%`, async () => {
    const accuracies = await digitsAccuracies({ kind: 'mlp', inputShape: [64], hidden: [64], classes: 10 });
    for (const accuracy of accuracies) expect(accuracy).toBeGreaterThanOrEqual(0.95);
    expect(mean(accuracies)).toBeGreaterThanOrEqual(DIGITS_MEAN_FLOOR);
  });

  it('the floor is out of reach of a linear model trained the same way (the MLP without its hidden layer)', async () => {
    const accuracies = await digitsAccuracies({ kind: 'logreg', inputShape: [64], classes: 10 });
    expect(mean(accuracies)).toBeLessThan(DIGITS_MEAN_FLOOR);
  });
});

const fashion = checkSystemDependency(systemDependencies.fashionMnist);

describe.skipIf(fashion.skip)(`Fashion-MNIST ${fashion.reason}`, () => {
  it('the MLP reaches >= 84% test accuracy after 2 epochs on the full 60k training set', async () => {
    // Mean and standard deviation of the Fashion-MNIST training pixels, in raw 0..255 units.
    const normalization = { mean: [72.94], std: [90.02] };
    const load = async (prefix: string): Promise<Dataset> => {
      const raw = await loadIdxDataset({ images: `${FASHION_MNIST_DIR}/${prefix}-images-idx3-ubyte.gz`, labels: `${FASHION_MNIST_DIR}/${prefix}-labels-idx1-ubyte.gz` });
      return reshapeExamples(normalize(raw, normalization), [784]);
    };
    const [train, test] = await Promise.all([load('train'), load('t10k')]);
    expect([train.count, test.count]).toEqual([60_000, 10_000]);
    const doc = task(
      { kind: 'mlp', inputShape: [784], hidden: [128], classes: 10 },
      [784],
      normalization,
      { kind: 'sgd', learningRate: 0.05 },
      { epochs: 2, batchSize: 32, proximalMu: 0, seed: 1 },
    );
    const accuracy = await trainAndTest(doc, train, test);
    expect(accuracy).toBeGreaterThanOrEqual(0.84);
  }, 300_000);
});
