/**
 * Seeded train/test split. A site that holds one labelled file keeps a held-out part for the
 * evaluation metrics it reports each round; the split depends only on the seed, so a restarted daemon
 * evaluates on the same examples.
 */
import { type Dataset, subset } from './dataset.js';
import { invalidOption } from './errors.js';
import { Random } from './random.js';

export interface SplitOptions {
  /** Fraction of the examples that go to the test part, in (0, 1). */
  readonly testFraction: number;
  readonly seed: number;
  /**
   * Split every class separately so both parts keep the class proportions (each class contributes
   * round(classCount * testFraction) test examples).
   * @default false
   */
  readonly stratify?: boolean;
}

export interface SplitIndices {
  readonly train: Int32Array;
  readonly test: Int32Array;
}

/** The indices of each part; both are in shuffled order. */
export function splitIndices(dataset: Pick<Dataset, 'labels' | 'classes' | 'count'>, options: SplitOptions): SplitIndices {
  const { testFraction } = options;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw invalidOption('INVALID_TEST_FRACTION', `testFraction must be a number in (0, 1), got ${String(testFraction)}`);
  }
  const random = new Random(options.seed);
  const order = new Int32Array(dataset.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  random.shuffle(order);
  if (options.stratify !== true) {
    const testCount = Math.round(dataset.count * testFraction);
    return { test: order.slice(0, testCount), train: order.slice(testCount) };
  }
  // Stratified: walk the shuffled order and send each class's first round(n_k * f) examples to test.
  const perClass = new Int32Array(dataset.classes);
  for (const label of dataset.labels) perClass[label] = (perClass[label] as number) + 1;
  const testQuota = perClass.map((n) => Math.round(n * testFraction));
  let testCount = 0;
  for (const quota of testQuota) testCount += quota;
  const test = new Int32Array(testCount);
  const train = new Int32Array(dataset.count - testCount);
  let t = 0;
  let r = 0;
  for (const index of order) {
    const label = dataset.labels[index] as number;
    if ((testQuota[label] as number) > 0) {
      testQuota[label] = (testQuota[label] as number) - 1;
      test[t++] = index;
    } else {
      train[r++] = index;
    }
  }
  return { train, test };
}

/** Splits a dataset into a training and a test Dataset (copies). */
export function trainTestSplit(dataset: Dataset, options: SplitOptions): { train: Dataset; test: Dataset } {
  const { train, test } = splitIndices(dataset, options);
  return { train: subset(dataset, train), test: subset(dataset, test) };
}
