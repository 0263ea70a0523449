/**
 * The evalStep sums of each loss kind on a batch whose outputs are known exactly (a zero-weight linear
 * model outputs its bias for every example), against values computed by hand; and the exported
 * inference model's outputs for each kind.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, exportInferenceModel, type LossSpec, type TaskDocument } from '../../../model/index.js';
import { f32, output, run, session } from '../../support/model/ort.js';
import { taskFor } from '../../support/model/tasks.js';

function taskWith(outputs: number, loss: LossSpec): TaskDocument {
  return { ...taskFor({ kind: 'logreg', inputShape: [2], classes: outputs }), loss, labels: Array.from({ length: outputs }, (_, i) => `t${i}`) };
}

async function evaluate(task: TaskDocument, bias: number[], targets: number[][]): Promise<Record<string, number>> {
  const plan = buildTrainingPlan(task);
  const outputs = bias.length;
  const results = await run(await session(plan.evalStep), {
    'linear.weight': f32(new Array<number>(outputs * 2).fill(0), [outputs, 2]),
    'linear.bias': f32(bias, [outputs]),
    input: f32(targets.flatMap(() => [0.3, -0.7]), [targets.length, 2]),
    label: f32(targets.flat(), [targets.length, outputs]),
  });
  return Object.fromEntries(Object.keys(results).map((name) => [name, output(results, name).data[0] as number]));
}

const softplus = (z: number): number => Math.log1p(Math.exp(z));

describe('evalStep sums', () => {
  // Outputs [1, -1] for every row; residuals [1, -1] and [-1, 2].
  const targets = [
    [0, 0],
    [2, -3],
  ];

  it('mse: squared and absolute error sums, target sums, loss sum as mean over targets', async () => {
    const sums = await evaluate(taskWith(2, { kind: 'mse' }), [1, -1], targets);
    expect(sums).toEqual({ loss_sum: 3.5, correct: 0, squared_error_sum: 7, absolute_error_sum: 5, target_sum: -1, target_square_sum: 13 });
  });

  it('huber: the loss sum switches to linear beyond delta', async () => {
    const sums = await evaluate(taskWith(2, { kind: 'huber', delta: 1 }), [1, -1], targets);
    // 0.5 + 0.5 + 0.5 + (2 - 0.5), over 2 targets.
    expect(sums['loss_sum']).toBeCloseTo(1.5, 6);
    expect(sums['squared_error_sum']).toBe(7);
  });

  it('l1: the loss sum is the absolute error over the targets', async () => {
    const sums = await evaluate(taskWith(2, { kind: 'l1' }), [1, -1], targets);
    expect(sums['loss_sum']).toBeCloseTo(2.5, 6);
  });

  it('binary cross-entropy: micro confusion counts, exact-match count and the mean loss per example', async () => {
    // Predictions [1, 0, 1] for every row (z = [2, -1, 0.5]).
    const labels = [
      [1, 0, 0],
      [0, 1, 1],
      [1, 0, 1],
    ];
    const bias = [2, -1, 0.5];
    const sums = await evaluate(taskWith(3, { kind: 'binary_cross_entropy' }), bias, labels);
    expect(sums['true_positives']).toBe(4);
    expect(sums['false_positives']).toBe(2);
    expect(sums['false_negatives']).toBe(1);
    expect(sums['correct']).toBe(1);
    let loss = 0;
    for (const row of labels) for (const [i, y] of row.entries()) loss += y === 1 ? softplus(-(bias[i] as number)) : softplus(bias[i] as number);
    expect(sums['loss_sum']).toBeCloseTo(loss / 3, 5);
  });
});

describe('exported inference model per loss kind', () => {
  const parameters = Float32Array.of(0, 0, 0, 0, 0, 0, 2, -1, 0.5);
  const input = { input: f32([0.1, 0.2], [1, 2]) };

  it('multi-label: probabilities are a sigmoid per label', async () => {
    const results = await run(await session(exportInferenceModel(taskWith(3, { kind: 'binary_cross_entropy' }), parameters)), input);
    const probabilities = [...output(results, 'probabilities').data];
    [2, -1, 0.5].forEach((z, i) => expect(probabilities[i]).toBeCloseTo(1 / (1 + Math.exp(-z)), 6));
  });

  it('regression: the outputs are the predictions, with no probabilities', async () => {
    const results = await run(await session(exportInferenceModel(taskWith(3, { kind: 'mse' }), parameters)), input);
    expect(Object.keys(results)).toEqual(['logits']);
    expect([...output(results, 'logits').data]).toEqual([2, -1, 0.5]);
  });
});
