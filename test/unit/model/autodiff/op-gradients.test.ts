/**
 * Gradient check of every differentiable op, each in a tiny graph with L = sum(output * R), against
 * central finite differences run in ONNX Runtime. float64 where ONNX Runtime's CPU kernels have it;
 * float32 (Conv, ConvTranspose, AveragePool and Dropout are float-only there) with a larger step.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr } from '../../../../model/graph/builder.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { gradcheck } from '../../../support/model/gradcheck.js';
import { expectOpGradientsMatch, type OpCase } from '../../../support/model/op-gradcheck.js';
import { f32, f64, output, pseudoRandom, run, session } from '../../../support/model/ort.js';

const INT64 = DataType.INT64;

const cases: OpCase[] = [
  { name: 'Gemm', op: 'Gemm', inputs: { a: [3, 4], b: [4, 2], c: [2] } },
  { name: 'Gemm transA transB alpha beta, C [1, N]', op: 'Gemm', inputs: { a: [4, 3], b: [2, 4], c: [1, 2] }, attributes: { transA: attr.int(1), transB: attr.int(1), alpha: attr.float(0.7), beta: attr.float(1.3) } },
  { name: 'Gemm transA, C [M, N]', op: 'Gemm', inputs: { a: [4, 3], b: [4, 2], c: [3, 2] }, attributes: { transA: attr.int(1) } },
  { name: 'Gemm transB, C scalar', op: 'Gemm', inputs: { a: [3, 4], b: [2, 4], c: [] }, attributes: { transB: attr.int(1) } },
  { name: 'MatMul 2-D', op: 'MatMul', inputs: { a: [3, 4], b: [4, 2] } },
  { name: 'MatMul 3-D x 2-D', op: 'MatMul', inputs: { a: [2, 3, 4], b: [4, 2] } },
  { name: 'MatMul broadcast batch', op: 'MatMul', inputs: { a: [1, 3, 4], b: [2, 4, 2] } },
  { name: 'Add broadcast', op: 'Add', inputs: { a: [2, 3, 4], b: [3, 1] } },
  { name: 'Sub broadcast', op: 'Sub', inputs: { a: [2, 1], b: [1, 3] } },
  { name: 'Mul broadcast', op: 'Mul', inputs: { a: [2, 3], b: [3] } },
  { name: 'Div broadcast', op: 'Div', inputs: { a: [2, 3], b: [2, 1] }, range: [0.5, 2] },
  { name: 'Relu', op: 'Relu', inputs: { x: [3, 4] }, values: { x: pseudoRandom(12, 5).map((v) => (v < 0 ? v - 0.1 : v + 0.1)) } },
  { name: 'Sigmoid', op: 'Sigmoid', inputs: { x: [3, 4] }, range: [-3, 3] },
  { name: 'Tanh', op: 'Tanh', inputs: { x: [3, 4] }, range: [-2, 2] },
  { name: 'Identity', op: 'Identity', inputs: { x: [2, 3] } },
  { name: 'Softmax axis 1', op: 'Softmax', inputs: { x: [3, 4] }, attributes: { axis: attr.int(1) }, range: [-2, 2] },
  { name: 'Softmax 3-D axis 1', op: 'Softmax', inputs: { x: [2, 3, 4] }, attributes: { axis: attr.int(1) }, range: [-2, 2] },
  { name: 'LogSoftmax', op: 'LogSoftmax', inputs: { x: [3, 4] }, range: [-2, 2] },
  { name: 'Flatten axis 2', op: 'Flatten', inputs: { x: [2, 3, 2, 2] }, attributes: { axis: attr.int(2) } },
  { name: 'Reshape', op: 'Reshape', inputs: { x: [2, 3, 4] }, constants: [{ dataType: INT64, dims: [2], values: [0, -1] }] },
  { name: 'Transpose', op: 'Transpose', inputs: { x: [2, 3, 4] }, attributes: { perm: attr.ints([2, 0, 1]) } },
  { name: 'Squeeze', op: 'Squeeze', inputs: { x: [2, 1, 3] }, constants: [{ dataType: INT64, dims: [1], values: [1] }] },
  { name: 'Unsqueeze', op: 'Unsqueeze', inputs: { x: [2, 3] }, constants: [{ dataType: INT64, dims: [2], values: [0, 3] }] },
  { name: 'Concat', op: 'Concat', inputs: { a: [2, 3], b: [2, 1], c: [2, 2] }, attributes: { axis: attr.int(1) } },
  {
    name: 'MaxPool 2x2 stride 2',
    op: 'MaxPool',
    inputs: { x: [2, 2, 4, 4] },
    attributes: { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) },
    // Distinct values at least 0.01 apart: the finite-difference step never changes an argmax.
    values: { x: pseudoRandom(64, 3).map((v, i) => v * 0.01 + (i * 37) % 64 * 0.05) },
  },
  {
    name: 'MaxPool 2x3 stride 2x3 on 5x7 (tiling windows, rows and columns left over)',
    op: 'MaxPool',
    inputs: { x: [2, 3, 5, 7] },
    attributes: { kernel_shape: attr.ints([2, 3]), strides: attr.ints([2, 3]) },
    values: { x: pseudoRandom(210, 6).map((v, i) => v * 0.01 + ((i * 53) % 210) * 0.05) },
  },
  {
    name: 'MaxPool 3x3 stride 2 pad 1 ceil_mode (overlapping windows)',
    op: 'MaxPool',
    inputs: { x: [1, 2, 6, 6] },
    attributes: { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), ceil_mode: attr.int(1) },
    values: { x: pseudoRandom(72, 4).map((v, i) => v * 0.01 + (i * 29) % 72 * 0.05) },
  },
  {
    name: 'BatchNormalization (training: batch statistics)',
    op: 'BatchNormalization',
    inputs: { x: [3, 2, 2, 2], scale: [2], bias: [2] },
    constants: [
      { dataType: DataType.DOUBLE, dims: [2], values: [0.1, -0.2] },
      { dataType: DataType.DOUBLE, dims: [2], values: [1.5, 0.7] },
    ],
  },
  { name: 'Conv 3x3 pad 1', op: 'Conv', precision: 'float32', inputs: { x: [2, 2, 5, 5], w: [3, 2, 3, 3], b: [3] }, attributes: { pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv stride 2, remainder rows, asymmetric pads', op: 'Conv', precision: 'float32', inputs: { x: [1, 2, 9, 8], w: [2, 2, 3, 2] }, attributes: { strides: attr.ints([2, 3]), pads: attr.ints([1, 0, 0, 1]) } },
  { name: 'Conv auto_pad SAME_UPPER stride 2', op: 'Conv', precision: 'float32', inputs: { x: [1, 1, 6, 6], w: [2, 1, 4, 4], b: [2] }, attributes: { auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) } },
  { name: 'AveragePool 2x2 stride 2', op: 'AveragePool', precision: 'float32', inputs: { x: [2, 2, 4, 4] }, attributes: { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) } },
  { name: 'AveragePool 3x3 pad 1, count_include_pad 0', op: 'AveragePool', precision: 'float32', inputs: { x: [1, 2, 5, 5] }, attributes: { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'AveragePool 3x3 stride 2 pad 1, count_include_pad 1', op: 'AveragePool', precision: 'float32', inputs: { x: [1, 1, 6, 5] }, attributes: { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), count_include_pad: attr.int(1) } },
];

describe('gradient of every supported op matches central finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await expectOpGradientsMatch(c);
    });
  }

  it('Cast between float types passes the gradient through', async () => {
    const b = new GraphBuilder('cast');
    b.addInput('x', DataType.FLOAT, [2, 3]);
    const wide = b.op('Cast', ['x'], { to: attr.int(DataType.DOUBLE) });
    b.appendNode('Tanh', [wide], ['y'], {});
    b.addOutput('y', DataType.DOUBLE, [2, 3]);
    const result = await gradcheck(b.build(), { x: f32(pseudoRandom(6, 9), [2, 3]) }, { wrt: ['x'], step: 1e-2, atol: 1e-4, rtol: 1e-3 });
    expect(result.mismatches).toEqual([]);
  });

  it('shape plumbing (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) is resolved and Reshape is differentiated', async () => {
    const b = new GraphBuilder('plumbing');
    b.addInput('x', DataType.DOUBLE, ['batch', 2, 3]);
    b.addInput('w', DataType.DOUBLE, [6, 2]);
    const batch = b.op('Gather', [b.op('Shape', ['x']), b.constant(DataType.INT64, [], [0])], { axis: attr.int(0) });
    const target = b.op('Concat', [b.op('Unsqueeze', [batch, b.int64s([0])]), b.int64s([-1])], { axis: attr.int(0) });
    b.appendNode('MatMul', [b.op('Reshape', ['x', target]), 'w'], ['y'], {});
    b.addOutput('y', DataType.DOUBLE, ['batch', 2]);
    const result = await gradcheck(b.build(), { x: f64(pseudoRandom(18, 2), [3, 2, 3]), w: f64(pseudoRandom(12, 3), [6, 2]) }, { wrt: ['x', 'w'], step: 1e-6, atol: 1e-7, rtol: 1e-6 });
    expect(result.mismatches).toEqual([]);
    expect(result.checked).toBe(30);
  });

  it('Dropout in training mode: dx = dy * mask / (1 - ratio), with the mask the forward drew', async () => {
    const b = new GraphBuilder('dropout');
    b.addInput('x', DataType.FLOAT, [4, 25]);
    b.appendNode('Dropout', ['x', b.scalar(0.3)], ['y'], { seed: attr.int(5) });
    b.addOutput('y', DataType.FLOAT, [4, 25]);
    const s = await session(encodeModel(modelFromGraph(buildGradientGraph(b.build(), ['x']))));
    const x = pseudoRandom(100, 8, 0.5, 1.5);
    const seed = pseudoRandom(100, 9);
    const results = await run(s, { x: f32(x, [4, 25]), 'grad.y': f32(seed, [4, 25]) });
    const y = output(results, 'y').data;
    const grad = output(results, 'grad.x').data;
    let dropped = 0;
    for (let i = 0; i < 100; i++) {
      const kept = (y[i] as number) !== 0;
      if (!kept) dropped++;
      if (kept) expect(y[i]).toBeCloseTo((x[i] as number) / 0.7, 5);
      expect(grad[i]).toBeCloseTo(kept ? (seed[i] as number) / 0.7 : 0, 5);
    }
    // Training mode really drops: about 30 of 100 (a binomial tail check, not a rate test).
    expect(dropped).toBeGreaterThan(5);
    expect(dropped).toBeLessThan(60);
  });

  it('a value consumed twice receives the sum of both gradients', async () => {
    const b = new GraphBuilder('fanout');
    b.addInput('x', DataType.DOUBLE, [2, 3]);
    b.appendNode('Mul', [b.op('Tanh', ['x']), b.op('Sigmoid', ['x'])], ['y'], {});
    b.addOutput('y', DataType.DOUBLE, [2, 3]);
    const result = await gradcheck(b.build(), { x: f64(pseudoRandom(6, 4), [2, 3]) }, { wrt: ['x'], step: 1e-6, atol: 1e-8, rtol: 1e-6 });
    expect(result.mismatches).toEqual([]);
  });
});
