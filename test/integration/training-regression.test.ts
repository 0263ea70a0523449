/**
 * Regression and multi-label training end to end on the trainer (worker thread, ONNX Runtime), measured
 * with the evaluation sums the secure sum would carry:
 * - the diabetes table shipped with Debian's python3-sklearn (442 patients, 10 raw features, disease
 *   progression after a year): test R^2 within 0.05 of scikit-learn's LinearRegression on the same split,
 *   computed here through Python, from squared_error_sum, target_sum, target_square_sum;
 * - multi-label (sklearn's make_multilabel_classification, 5 labels: sklearn ships no real multi-label
 *   table): micro-F1 from the summed TP/FP/FN at least 0.1 above predicting each label's majority.
 * A broken gradient, a wrong target feed or a wrong evaluation sum fails the floor.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, parseTaskDocument, type TaskDocument } from '../../model/index.js';
import { Trainer, createTargetDataset, type Dataset } from '../../participant/index.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const sklearn = checkSystemDependency(systemDependencies.pythonSklearn);

interface Split {
  readonly xTrain: number[][];
  readonly yTrain: number[][];
  readonly xTest: number[][];
  readonly yTest: number[][];
  readonly mean: number[];
  readonly std: number[];
  readonly reference: number;
}

/** Loads and splits a dataset in Python, with the reference figure computed there. */
function python(script: string): Split {
  const result = spawnSync(DEBIAN_PYTHON, ['-c', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Split;
}

const DIABETES = String.raw`
import json
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression
X, y = load_diabetes(return_X_y=True, scaled=False)
a, b, c, d = train_test_split(X, y, test_size=0.25, random_state=0)
r2 = LinearRegression().fit(a, c).score(b, d)
print(json.dumps({'xTrain': a.tolist(), 'yTrain': [[v] for v in c], 'xTest': b.tolist(), 'yTest': [[v] for v in d],
  'mean': a.mean(0).tolist(), 'std': a.std(0).tolist(), 'reference': r2}))
`;

const MULTI_LABEL = String.raw`
import json
import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.model_selection import train_test_split
X, Y = make_multilabel_classification(n_samples=1200, n_features=20, n_classes=5, n_labels=2, random_state=3)
a, b, c, d = train_test_split(X, Y, test_size=0.25, random_state=0)
majority = (c.mean(0) >= 0.5).astype(int)
p = np.tile(majority, (len(d), 1))
tp = (p * d).sum(); fp = (p * (1 - d)).sum(); fn = ((1 - p) * d).sum()
f1 = 2 * tp / (2 * tp + fp + fn)
print(json.dumps({'xTrain': a.tolist(), 'yTrain': c.tolist(), 'xTest': b.tolist(), 'yTest': d.tolist(),
  'mean': a.mean(0).tolist(), 'std': a.std(0).tolist(), 'reference': float(f1)}))
`;

function dataset(x: number[][], y: number[][], source: string): Dataset {
  return createTargetDataset({
    features: Float32Array.from(x.flat()),
    targets: Float32Array.from(y.flat()),
    targetSize: (y[0] as number[]).length,
    exampleShape: [(x[0] as number[]).length],
    source,
  });
}

/** The task's normalisation applied as a site would (normalize() with per-element mean/std). */
function standardized(x: number[][], mean: number[], std: number[]): number[][] {
  return x.map((row) => row.map((v, i) => (v - (mean[i] as number)) / (std[i] as number)));
}

async function trainAndEvaluate(task: TaskDocument, split: Split): Promise<Readonly<Record<string, number>>> {
  const norm = task.normalization as { mean: number[]; std: number[] };
  const train = dataset(standardized(split.xTrain, norm.mean, norm.std), split.yTrain, 'train');
  const test = dataset(standardized(split.xTest, norm.mean, norm.std), split.yTest, 'test');
  const plan = buildTrainingPlan(task);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
  try {
    const { epochs, batchSize, seed } = task.training;
    const result = await trainer.train(plan.initialParameters, train, { epochs, batchSize, seed, learningRate: task.optimizer.learningRate });
    const evaluation = await trainer.evaluate(result.parameters, test, { batchSize: 256 });
    expect(evaluation.examples).toBe(test.count);
    return { ...evaluation.sums, examples: evaluation.examples, lossSum: evaluation.lossSum };
  } finally {
    await trainer.close();
  }
}

function taskOf(features: number[], labels: string[], loss: TaskDocument['loss'], split: Split, epochs: number, learningRate: number): TaskDocument {
  return parseTaskDocument({
    formatVersion: 1,
    model: { kind: 'mlp', inputShape: [features.length], hidden: [32], classes: labels.length },
    loss,
    input: { shape: [features.length], dtype: 'float32' },
    normalization: { mean: split.mean, std: split.std.map((s) => (s > 0 ? s : 1)) },
    labels,
    optimizer: { kind: 'adam', learningRate },
    training: { epochs, batchSize: 32, proximalMu: 0, seed: 5 },
  });
}

describe.skipIf(sklearn.skip)(`regression and multi-label training ${sklearn.reason}`, () => {
  it('diabetes (MSE): test R^2 within 0.05 of scikit-learn LinearRegression', async () => {
    const split = python(DIABETES);
    const task: TaskDocument = {
      ...taskOf(split.mean, ['progression'], { kind: 'mse' }, split, 300, 0.02),
      model: { kind: 'logreg', inputShape: [10], classes: 1 },
      optimizer: { kind: 'sgd', learningRate: 0.02 },
    };
    const sums = await trainAndEvaluate(task, split);
    const n = sums['examples'] as number;
    const targetSum = sums['target_sum'] as number;
    const total = (sums['target_square_sum'] as number) - (targetSum * targetSum) / n;
    const r2 = 1 - (sums['squared_error_sum'] as number) / total;
    console.log(`diabetes test R^2: fedgate ${r2.toFixed(4)}, scikit-learn LinearRegression ${split.reference.toFixed(4)}`);
    expect(r2).toBeGreaterThan(split.reference - 0.05);
    // The evaluation loss sum is the mean over targets of the squared errors (one target).
    expect(sums['lossSum']).toBeCloseTo(sums['squared_error_sum'] as number, 0);
  }, 120_000);

  it('multi-label (BCE with logits): micro-F1 at least 0.1 above the per-label majority', async () => {
    const split = python(MULTI_LABEL);
    const labels = ['a', 'b', 'c', 'd', 'e'];
    const task = taskOf(split.mean, labels, { kind: 'binary_cross_entropy' }, split, 30, 0.01);
    const sums = await trainAndEvaluate(task, split);
    const tp = sums['true_positives'] as number;
    const f1 = (2 * tp) / (2 * tp + (sums['false_positives'] as number) + (sums['false_negatives'] as number));
    console.log(`multi-label test micro-F1: fedgate ${f1.toFixed(4)}, per-label majority ${split.reference.toFixed(4)}`);
    expect(f1).toBeGreaterThan(split.reference + 0.1);
  }, 120_000);
});
