/**
 * Layer and instance normalisation inside a training plan: the training graph writes them out in
 * primitives (normalization.ts), the evaluation graph copies the ONNX nodes. Both must compute what ONNX
 * Runtime computes for the imported model itself, or evaluation and training would disagree.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, unflattenParameters } from '../../../model/index.js';
import { GraphBuilder, attr } from '../../../model/graph/builder.js';
import { modelFromGraph } from '../../../model/graph/model.js';
import { encodeModel } from '../../../model/onnx/codec.js';
import { DataType } from '../../../model/onnx/schema.js';
import { makeTensor } from '../../../model/onnx/tensor.js';
import { onnxTask } from '../../support/model/fixtures.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed } from '../../support/model/ort.js';

function floats(b: GraphBuilder, name: string, dims: number[], seed: number, lo = -1, hi = 1): string {
  const values = new Float32Array(pseudoRandom(dims.reduce((n, d) => n * d, 1), seed, lo, hi));
  return b.addInitializer({ name, dataType: DataType.FLOAT, dims, data: new Uint8Array(values.buffer) });
}

/** A float constant as torch writes it: a Constant node (an initializer would count as a weight). */
function constant(b: GraphBuilder, value: number): string {
  return b.op('Constant', [], { value: attr.tensor(makeTensor('c', DataType.FLOAT, [], [value])) });
}

/** x [N, 6] -> Gemm -> InstanceNormalization over [N, 2, 3] -> LayerNormalization -> Erf GELU -> Gemm -> logits [N, 3]. */
function normalisedModel(): Uint8Array {
  const b = new GraphBuilder('normalised');
  b.addInput('x', DataType.FLOAT, ['N', 6]);
  const h = b.op('Gemm', ['x', floats(b, 'w1', [6, 6], 1)], { transB: attr.int(1) });
  const grouped = b.op('Reshape', [h, b.int64s([0, 2, 3])]);
  const instance = b.op('InstanceNormalization', [grouped, floats(b, 'in.scale', [2], 2, 0.5, 1.5), floats(b, 'in.bias', [2], 3)], { epsilon: attr.float(1e-5) });
  const flat = b.op('Reshape', [instance, b.int64s([0, 6])]);
  const layer = b.op('LayerNormalization', [flat, floats(b, 'ln.scale', [6], 4, 0.5, 1.5), floats(b, 'ln.bias', [6], 5)], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
  const erf = b.op('Erf', [b.op('Div', [layer, constant(b, Math.SQRT2)])]);
  const gelu = b.op('Mul', [b.op('Mul', [layer, b.op('Add', [erf, constant(b, 1)])]), constant(b, 0.5)]);
  b.appendNode('Gemm', [gelu, floats(b, 'w2', [3, 6], 6)], ['logits'], { transB: attr.int(1) });
  b.addOutput('logits', DataType.FLOAT, ['N', 3]);
  return encodeModel(modelFromGraph(b.build(), { opset: 17 }));
}

describe('LayerNormalization and InstanceNormalization in a training plan', () => {
  it('train and eval graphs both compute the imported model', async () => {
    const bytes = normalisedModel();
    const plan = buildTrainingPlan(onnxTask(bytes, [6], ['a', 'b', 'c']), bytes);
    const x = pseudoRandom(5 * 6, 9, -2, 2);
    const labels = [0, 2, 1, 1, 0];
    const logits = output(await run(await session(bytes), { x: f32(x, [5, 6]) }), 'logits').data;
    let reference = 0;
    for (let r = 0; r < 5; r++) {
      const row = [0, 1, 2].map((c) => logits[r * 3 + c] as number);
      const max = Math.max(...row);
      reference += Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max - (row[labels[r] as number] as number);
    }
    const feeds: Record<string, Feed> = { input: f32(x, [5, 6]), label: i64(labels, [5]) };
    for (const [name, values] of unflattenParameters(plan, plan.initialParameters)) {
      feeds[name] = f32(values, plan.parameters.find((p) => p.name === name)?.shape ?? []);
    }
    const evaluated = await run(await session(plan.evalStep), feeds);
    expect(output(evaluated, 'loss_sum').data[0]).toBeCloseTo(reference, 4);
    for (const state of plan.optimizerState) feeds[state.name] = f32(new Float32Array(state.shape.reduce((n, d) => n * d, 1)), state.shape);
    const trained = await run(await session(plan.trainStep), { ...feeds, learning_rate: f32([0.1], []) });
    expect((output(trained, 'loss').data[0] as number) * 5).toBeCloseTo(reference, 4);
    expect(plan.parameters.map((p) => p.name).sort()).toEqual(['in.bias', 'in.scale', 'ln.bias', 'ln.scale', 'w1', 'w2']);
  });
});
