/**
 * Every loss of the task document against PyTorch 1.13 (Debian python3-torch): a logistic-regression
 * plan takes one plain-SGD step on a fixed batch, and its 'loss' output and its update (w - lr * grad)
 * must match torch.nn's loss and autograd gradient for the same weights and batch. Catches a wrong
 * closed-form gradient, a wrong mean (weighted mean, element mean), a wrong smoothing or pos_weight term.
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTrainingPlan, type LossSpec, type TaskDocument, type TrainingPlan } from '../../../model/index.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed } from '../../support/model/ort.js';
import { taskFor } from '../../support/model/tasks.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../../support/system-deps.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);

const BATCH = 5;
const FEATURES = 4;
const LEARNING_RATE = 0.5;

/** PyTorch's loss and gradients of a linear layer y = x W^T + b for the given loss. */
const REFERENCE = String.raw`
import json, sys, torch
torch.set_default_dtype(torch.float64)
def reference(spec):
  W = torch.tensor(spec['W'], dtype=torch.float64, requires_grad=True)
  b = torch.tensor(spec['b'], dtype=torch.float64, requires_grad=True)
  x = torch.tensor(spec['x'], dtype=torch.float64)
  z = x @ W.T + b
  loss = spec['loss']
  kind = 'cross_entropy' if loss == 'cross_entropy' else loss['kind']
  if kind == 'cross_entropy':
      options = {} if loss == 'cross_entropy' else loss
      weight = torch.tensor(options['classWeights']) if 'classWeights' in options else None
      fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=options.get('labelSmoothing', 0.0))
      y = torch.tensor(spec['y'], dtype=torch.long)
  elif kind == 'binary_cross_entropy':
      fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(loss['posWeight']) if 'posWeight' in loss else None)
      y = torch.tensor(spec['y'], dtype=torch.float64)
  elif kind == 'mse':
      fn = torch.nn.MSELoss(); y = torch.tensor(spec['y'], dtype=torch.float64)
  elif kind == 'l1':
      fn = torch.nn.L1Loss(); y = torch.tensor(spec['y'], dtype=torch.float64)
  else:
      fn = torch.nn.HuberLoss(delta=loss['delta']); y = torch.tensor(spec['y'], dtype=torch.float64)
  value = fn(z, y)
  value.backward()
  return {'loss': value.item(), 'gW': W.grad.flatten().tolist(), 'gb': b.grad.tolist()}
print(json.dumps([reference(spec) for spec in json.load(sys.stdin)]))
`;

interface Reference {
  readonly loss: number;
  readonly gW: number[];
  readonly gb: number[];
}

/** One Python run for every case: importing torch takes seconds. */
function references(specs: readonly object[]): Reference[] {
  const result = spawnSync(DEBIAN_PYTHON, ['-c', REFERENCE], { input: JSON.stringify(specs), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python reference failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Reference[];
}

function taskWith(outputs: number, loss: LossSpec): TaskDocument {
  const base = taskFor({ kind: 'logreg', inputShape: [FEATURES], classes: outputs }, { optimizer: { kind: 'sgd', learningRate: LEARNING_RATE } });
  return { ...base, loss };
}

const x = pseudoRandom(BATCH * FEATURES, 7, -2, 2);
const classes = [0, 2, 1, 2, 2];
const multiHot = [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1];
// Residuals on both sides of a Huber delta of 0.5 and several targets per example.
const realTargets = pseudoRandom(BATCH * 3, 11, -3, 3);

interface Case {
  readonly name: string;
  readonly loss: LossSpec;
  readonly label: Feed;
  readonly labelValues: number[] | number[][];
}

const rows = (values: number[], width: number): number[][] => Array.from({ length: values.length / width }, (_, i) => values.slice(i * width, (i + 1) * width));

const cases: Case[] = [
  { name: 'cross-entropy', loss: 'cross_entropy', label: i64(classes, [BATCH]), labelValues: classes },
  { name: 'cross-entropy with class weights', loss: { kind: 'cross_entropy', classWeights: [0.2, 1, 3] }, label: i64(classes, [BATCH]), labelValues: classes },
  { name: 'cross-entropy with label smoothing', loss: { kind: 'cross_entropy', labelSmoothing: 0.1 }, label: i64(classes, [BATCH]), labelValues: classes },
  {
    name: 'cross-entropy with class weights and label smoothing',
    loss: { kind: 'cross_entropy', classWeights: [0.5, 2, 0.25], labelSmoothing: 0.2 },
    label: i64(classes, [BATCH]),
    labelValues: classes,
  },
  { name: 'binary cross-entropy (multi-label)', loss: { kind: 'binary_cross_entropy' }, label: f32(multiHot, [BATCH, 3]), labelValues: rows(multiHot, 3) },
  { name: 'binary cross-entropy with pos_weight', loss: { kind: 'binary_cross_entropy', posWeight: [3, 0.5, 1.5] }, label: f32(multiHot, [BATCH, 3]), labelValues: rows(multiHot, 3) },
  { name: 'mean squared error', loss: { kind: 'mse' }, label: f32(realTargets, [BATCH, 3]), labelValues: rows(realTargets, 3) },
  { name: 'L1', loss: { kind: 'l1' }, label: f32(realTargets, [BATCH, 3]), labelValues: rows(realTargets, 3) },
  { name: 'Huber', loss: { kind: 'huber', delta: 0.5 }, label: f32(realTargets, [BATCH, 3]), labelValues: rows(realTargets, 3) },
];

describe.skipIf(torch.skip)(`losses match PyTorch 1.13 ${torch.reason}`, () => {
  const plans = cases.map((c) => buildTrainingPlan(taskWith(3, c.loss)));
  // The zoo starts biases at 0; a non-zero bias exercises its gradient path with real values.
  const bias = Float32Array.of(0.3, -0.2, 0.1);
  let expected: Reference[] = [];
  beforeAll(() => {
    expected = references(
      cases.map((c, index) => ({
        W: rows([...(plans[index] as TrainingPlan).initialParameters.subarray(0, 3 * FEATURES)], FEATURES),
        b: [...bias],
        x: rows(x, FEATURES),
        y: c.labelValues,
        loss: c.loss,
      })),
    );
  });
  for (const [index, c] of cases.entries()) {
    it(`${c.name}: loss and gradient`, async () => {
      const plan = plans[index] as TrainingPlan;
      const weights = plan.initialParameters.subarray(0, 3 * FEATURES);
      const reference = expected[index] as Reference;
      const s = await session(plan.trainStep);
      const results = await run(s, {
        'linear.weight': f32(weights, [3, FEATURES]),
        'linear.bias': f32(bias, [3]),
        input: f32(x, [BATCH, FEATURES]),
        label: c.label,
        learning_rate: f32([LEARNING_RATE], []),
      });
      expect(output(results, 'loss').data[0]).toBeCloseTo(reference.loss, 5);
      const gradW = Array.from(output(results, 'updated.linear.weight').data, (v, i) => ((weights[i] as number) - v) / LEARNING_RATE);
      const gradB = Array.from(output(results, 'updated.linear.bias').data, (v, i) => ((bias[i] as number) - v) / LEARNING_RATE);
      for (const [i, g] of reference.gW.entries()) expect(gradW[i]).toBeCloseTo(g, 4);
      for (const [i, g] of reference.gb.entries()) expect(gradB[i]).toBeCloseTo(g, 4);
    });
  }
});
