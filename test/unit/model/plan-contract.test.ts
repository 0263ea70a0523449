/**
 * The TrainingPlan contract with participant/trainer: value names, element types and dimensions of
 * the trainStep, trainBlock and evalStep graphs, and the evaluation outputs.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan } from '../../../model/index.js';
import { decodeModel } from '../../../model/onnx/codec.js';
import type { ValueInfoIR } from '../../../model/onnx/ir.js';
import { DataType } from '../../../model/onnx/schema.js';
import { f32, i64, output, pseudoRandom, run, session } from '../../support/model/ort.js';
import { crossEntropy, logregLogits } from '../../support/model/reference.js';
import { taskFor } from '../../support/model/tasks.js';

const signature = (values: readonly ValueInfoIR[]): Record<string, string> =>
  Object.fromEntries(values.map((v) => [v.name, `${v.elemType}:${JSON.stringify(v.shape)}`]));

const F = DataType.FLOAT;
const I = DataType.INT64;

describe('trainStep / trainBlock / evalStep interfaces', () => {
  it('plain SGD without FedProx', () => {
    const plan = buildTrainingPlan(taskFor({ kind: 'logreg', inputShape: [1, 2, 2], classes: 3 }));
    const step = decodeModel(plan.trainStep).graph;
    expect(signature(step.inputs)).toEqual({
      'linear.weight': `${F}:[3,4]`,
      'linear.bias': `${F}:[3]`,
      input: `${F}:["batch",1,2,2]`,
      label: `${I}:["batch"]`,
      learning_rate: `${F}:[]`,
    });
    expect(signature(step.outputs)).toEqual({
      'updated.linear.weight': `${F}:[3,4]`,
      'updated.linear.bias': `${F}:[3]`,
      loss: `${F}:[]`,
      correct: `${F}:[]`,
    });
    const block = decodeModel(plan.trainBlock as Uint8Array).graph;
    expect(signature(block.inputs)).toMatchObject({ input: `${F}:["steps","batch",1,2,2]`, label: `${I}:["steps","batch"]` });
    expect(signature(block.outputs)).toEqual(signature(step.outputs));
    const evaluation = decodeModel(plan.evalStep).graph;
    expect(signature(evaluation.inputs)).toEqual({
      'linear.weight': `${F}:[3,4]`,
      'linear.bias': `${F}:[3]`,
      input: `${F}:["batch",1,2,2]`,
      label: `${I}:["batch"]`,
    });
    expect(signature(evaluation.outputs)).toEqual({ loss_sum: `${F}:[]`, correct: `${F}:[]` });
  });

  it('Adam with FedProx adds the optimiser state, global parameters and proximal_mu', () => {
    const plan = buildTrainingPlan(taskFor({ kind: 'logreg', inputShape: [4], classes: 2 }, { optimizer: { kind: 'adam', learningRate: 0.01 }, proximalMu: 0.01 }));
    const step = decodeModel(plan.trainStep).graph;
    expect(step.inputs.map((v) => v.name).sort()).toEqual(
      [
        'linear.weight',
        'linear.bias',
        'adam.m.linear.weight',
        'adam.v.linear.weight',
        'adam.m.linear.bias',
        'adam.v.linear.bias',
        'adam.step',
        'input',
        'label',
        'learning_rate',
        'global.linear.weight',
        'global.linear.bias',
        'proximal_mu',
      ].sort(),
    );
    expect(step.outputs.map((v) => v.name).sort()).toEqual(
      [...plan.parameters, ...plan.optimizerState].map((t) => `updated.${t.name}`).concat(['loss', 'correct']).sort(),
    );
    expect(plan.optimizerState.find((s) => s.name === 'adam.step')?.shape).toEqual([]);
  });
});

describe('evalStep', () => {
  it('returns the summed cross-entropy and the correct count of the batch', async () => {
    const plan = buildTrainingPlan(taskFor({ kind: 'logreg', inputShape: [3], classes: 4 }));
    const w = pseudoRandom(12, 1).map(Math.fround);
    const b = pseudoRandom(4, 2).map(Math.fround);
    const x = pseudoRandom(15, 3, -2, 2).map(Math.fround);
    const labels = [0, 1, 2, 3, 1];
    const result = await run(await session(plan.evalStep), {
      'linear.weight': f32(w, [4, 3]),
      'linear.bias': f32(b, [4]),
      input: f32(x, [5, 3]),
      label: i64(labels, [5]),
    });
    const logits = logregLogits(w, b, { x: Float64Array.from(x), labels }, 4);
    expect(output(result, 'loss_sum').data[0]).toBeCloseTo(5 * crossEntropy(logits, labels, 4), 4);
    const correct = labels.filter((label, row) => {
      const scores = Array.from(logits.subarray(row * 4, row * 4 + 4));
      return scores.indexOf(Math.max(...scores)) === label;
    }).length;
    expect(output(result, 'correct').data[0]).toBe(correct);
  });
});
