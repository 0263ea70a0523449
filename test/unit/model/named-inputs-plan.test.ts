/**
 * Which tasks get a plan of named inputs, and which are refused when the plan is built: a zoo model (it
 * reads one float32 input), task-level normalisation on named inputs. A single float32 entry in `inputs`
 * keeps the one 'input' plan.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, namedInputsOf, type TaskDocument } from '../../../model/index.js';
import { decodeModel } from '../../../model/onnx/codec.js';
import { taskFor } from '../../support/model/tasks.js';

const zoo = taskFor({ kind: 'logreg', inputShape: [4], classes: 3 });
const mixed: NonNullable<TaskDocument['inputs']> = [
  { name: 'numeric', columns: ['a', 'b', 'c', 'd'], dtype: 'float32', shape: [4] },
  { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris', 'lyon'] },
];

describe('named inputs in the training plan', () => {
  it('are the task inputs when there are several or ids, and none for one float32 entry', () => {
    expect(namedInputsOf({ inputs: mixed })).toEqual(mixed);
    expect(namedInputsOf({ inputs: [mixed[1] as (typeof mixed)[number]] })).toHaveLength(1);
    expect(namedInputsOf({ inputs: [mixed[0] as (typeof mixed)[number]] })).toBeUndefined();
    expect(namedInputsOf({})).toBeUndefined();
  });

  it('keeps the one float32 input for a single float32 entry', () => {
    const plan = buildTrainingPlan({ ...zoo, inputs: [mixed[0] as (typeof mixed)[number]] });
    expect(decodeModel(plan.trainStep).graph.inputs.map((i) => i.name)).toContain('input');
  });

  it('refuses named inputs on a zoo model, naming them', () => {
    expect(() => buildTrainingPlan({ ...zoo, inputs: mixed })).toThrow(/inputs names numeric \(float32\), city \(int64\), but model\.kind logreg reads one float32 input; expected model\.kind onnx/);
  });

  it('refuses task-level normalisation on named inputs', () => {
    const task: TaskDocument = { ...zoo, model: { kind: 'onnx', modelSha256: '0'.repeat(64) }, inputs: mixed, normalization: { mean: [0.5], std: [2] } };
    expect(() => buildTrainingPlan(task, new Uint8Array(1))).toThrow(/expected normalization \{ scale: 1, offset: 0 \}/);
  });
});
