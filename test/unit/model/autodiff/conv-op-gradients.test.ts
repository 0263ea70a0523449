/**
 * Gradient check of the convolutional op family (grouped and 1-D Conv, ConvTranspose, 1-D pooling,
 * global pooling, Pad in every mode, Clip, HardSigmoid, HardSwish) against central finite differences
 * run in ONNX Runtime. A wrong rule (a group mixed up, a reflected row added to the wrong cell, a kink on
 * the wrong side) fails here on a graph small enough to read.
 */
import { describe, it } from 'vitest';
import { attr } from '../../../../model/graph/builder.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { expectOpGradientsMatch, type OpCase } from '../../../support/model/op-gradcheck.js';
import { pseudoRandom } from '../../../support/model/ort.js';

const INT64 = DataType.INT64;
const pads = (values: readonly number[]): NonNullable<OpCase['constants']> => [{ dataType: INT64, dims: [values.length], values }];
/** Values at least 0.05 apart (argmax stable under the finite-difference step), away from kinks. */
const distinct = (count: number, seed: number): number[] => pseudoRandom(count, seed).map((v, i) => v * 0.01 + (((i * 37) % count) - count / 2) * 0.05);
/** Values on both sides of the kinks at -3, 0, 3 and 6, never within 0.05 of one. */
const spread = (count: number, seed: number, lo: number, hi: number): number[] =>
  pseudoRandom(count, seed, lo, hi).map((v) => {
    const nearest = Math.round(v / 3) * 3;
    return Math.abs(v - nearest) < 0.05 ? nearest + 0.1 : v;
  });

const cases: OpCase[] = [
  { name: 'Conv group 2 stride 2 pad 1', op: 'Conv', precision: 'float32', inputs: { x: [2, 4, 6, 5], w: [6, 2, 3, 3], b: [6] }, attributes: { group: attr.int(2), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise (group = channels) 3x3 pad 1', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 5, 5], w: [3, 1, 3, 3] }, attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise multiplier 2, stride 2, rows left over', op: 'Conv', precision: 'float32', inputs: { x: [2, 2, 7, 6], w: [4, 1, 3, 2] }, attributes: { group: attr.int(2), strides: attr.ints([2, 2]) } },
  { name: 'Conv1d stride 2 pad 1 with bias', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 9], w: [4, 3, 3], b: [4] }, attributes: { strides: attr.ints([2]), pads: attr.ints([1, 1]) } },
  { name: 'Conv1d group 2', op: 'Conv', precision: 'float32', inputs: { x: [2, 4, 7], w: [4, 2, 2] }, attributes: { group: attr.int(2) } },
  // Lowered forms (model/autodiff/ops/conv-taps.ts): one batched GEMM for few output positions, per-channel matrices for depthwise.
  { name: 'Conv 3x3 pad 1 on a 1x1 input (batched GEMM, centre tap only) with bias', op: 'Conv', precision: 'float32', inputs: { x: [3, 5, 1, 1], w: [4, 5, 3, 3], b: [4] }, attributes: { pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv 3x3 stride 2 pad 1 to a 2x2 output (batched GEMM, strided taps)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 4, 3], w: [4, 3, 3, 3], b: [4] }, attributes: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv 1x1 stride 2 to a 2x2 output (batched GEMM, downsample)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 4, 4], w: [5, 3, 1, 1] }, attributes: { strides: attr.ints([2, 2]) } },
  { name: 'Conv 3x2 kernel, asymmetric pads, 2x2 output (batched GEMM, some taps dead)', op: 'Conv', precision: 'float32', inputs: { x: [2, 2, 2, 1], w: [3, 2, 3, 2], b: [3] }, attributes: { pads: attr.ints([1, 1, 1, 0]) } },
  { name: 'Conv1d to 2 positions (batched GEMM)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 2], w: [4, 3, 3], b: [4] }, attributes: { pads: attr.ints([1, 1]) } },
  { name: 'Conv depthwise stride 2 pad 1 to 2x2 with bias', op: 'Conv', precision: 'float32', inputs: { x: [2, 4, 3, 4], w: [4, 1, 3, 3], b: [4] }, attributes: { group: attr.int(4), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise on a 1x1 input pad 1 (centre tap only)', op: 'Conv', precision: 'float32', inputs: { x: [3, 4, 1, 1], w: [4, 1, 3, 3] }, attributes: { group: attr.int(4), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise 2x2 input stride 2 pad 1 to 1x1 (one row and column of taps dead)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 2, 2], w: [3, 1, 3, 3], b: [3] }, attributes: { group: attr.int(3), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv1d depthwise stride 2 pad 1 to 2 positions with bias', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 4], w: [3, 1, 3], b: [3] }, attributes: { group: attr.int(3), strides: attr.ints([2]), pads: attr.ints([1, 1]) } },
  { name: 'Conv depthwise 2x2 kernel on 2x2 input, no pads', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 2, 2], w: [3, 1, 2, 2] }, attributes: { group: attr.int(3) } },
  { name: 'Conv depthwise 3x3 pad 1 on 2x2 with bias (pads on both sides)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 2, 2], w: [3, 1, 3, 3], b: [3] }, attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise stride (2, 1) pad 1 to 2x2 (strided along one axis only)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 4, 2], w: [3, 1, 3, 3] }, attributes: { group: attr.int(3), strides: attr.ints([2, 1]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv depthwise 5x5 stride 2 pad 2, 9x8 -> 5x4, with bias', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 9, 8], w: [3, 1, 5, 5], b: [3] }, attributes: { group: attr.int(3), strides: attr.ints([2, 2]), pads: attr.ints([2, 2, 2, 2]) } },
  { name: 'Conv stride (1, 2) pad 1 to 2x2 (batched GEMM)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 2, 4], w: [2, 3, 3, 3], b: [2] }, attributes: { strides: attr.ints([1, 2]), pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'Conv 3x3 pad 1 on 4x4 (batched GEMM at 16 positions)', op: 'Conv', precision: 'float32', inputs: { x: [2, 3, 4, 4], w: [2, 3, 3, 3], b: [2] }, attributes: { pads: attr.ints([1, 1, 1, 1]) } },
  { name: 'ConvTranspose 3x3 stride 2 pad 1 output_padding 1', op: 'ConvTranspose', precision: 'float32', inputs: { x: [2, 3, 3, 4], w: [3, 2, 3, 3], b: [2] }, attributes: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), output_padding: attr.ints([1, 1]) } },
  { name: 'ConvTranspose group 2, 3x4 kernel, asymmetric stride and pads', op: 'ConvTranspose', precision: 'float32', inputs: { x: [2, 4, 3, 3], w: [4, 3, 3, 4] }, attributes: { group: attr.int(2), strides: attr.ints([2, 3]), pads: attr.ints([1, 0, 0, 2]), output_padding: attr.ints([1, 2]) } },
  { name: 'ConvTranspose1d stride 2 pad 1', op: 'ConvTranspose', precision: 'float32', inputs: { x: [2, 3, 5], w: [3, 2, 4], b: [2] }, attributes: { strides: attr.ints([2]), pads: attr.ints([1, 1]) } },
  { name: 'MaxPool1d 3 stride 2 pad 1', op: 'MaxPool', inputs: { x: [2, 2, 9] }, attributes: { kernel_shape: attr.ints([3]), strides: attr.ints([2]), pads: attr.ints([1, 1]) }, values: { x: distinct(36, 3) } },
  { name: 'AveragePool1d 3 stride 2 pad 1, count_include_pad 0', op: 'AveragePool', precision: 'float32', inputs: { x: [2, 2, 8] }, attributes: { kernel_shape: attr.ints([3]), strides: attr.ints([2]), pads: attr.ints([1, 1]) } },
  { name: 'GlobalAveragePool 2-D', op: 'GlobalAveragePool', precision: 'float32', inputs: { x: [2, 3, 4, 5] } },
  { name: 'GlobalAveragePool 1-D', op: 'GlobalAveragePool', precision: 'float32', inputs: { x: [2, 3, 7] } },
  { name: 'GlobalMaxPool 2-D', op: 'GlobalMaxPool', precision: 'float32', inputs: { x: [2, 3, 3, 4] }, values: { x: distinct(72, 5) } },
  { name: 'Pad constant (begin and end, two axes)', op: 'Pad', inputs: { x: [2, 3, 4] }, constants: pads([0, 1, 2, 0, 2, 1]) },
  { name: 'Pad constant with a negative (cropping) pad and a value', op: 'Pad', inputs: { x: [2, 5, 4] }, constants: [...pads([0, -1, 1, 0, 2, -2]), { dataType: DataType.DOUBLE, dims: [], values: [0.5] }] },
  { name: 'Pad reflect (two axes, uneven)', op: 'Pad', inputs: { x: [1, 2, 4, 5] }, attributes: { mode: attr.string('reflect') }, constants: pads([0, 0, 2, 1, 0, 0, 3, 4]) },
  { name: 'Pad edge (two axes, uneven)', op: 'Pad', inputs: { x: [1, 2, 3, 4] }, attributes: { mode: attr.string('edge') }, constants: pads([0, 0, 2, 0, 0, 0, 1, 3]) },
  { name: 'Clip (ReLU6: min 0, max 6)', op: 'Clip', inputs: { x: [4, 6] }, values: { x: spread(24, 7, -3, 9) }, constants: [{ dataType: DataType.DOUBLE, dims: [], values: [0] }, { dataType: DataType.DOUBLE, dims: [], values: [6] }] },
  { name: 'Clip max only', op: 'Clip', inputs: { x: [3, 5] }, values: { x: spread(15, 8, -2, 2) }, constants: [null, { dataType: DataType.DOUBLE, dims: [], values: [0.5] }] },
  { name: 'HardSigmoid alpha 1/6 (as torch exports)', op: 'HardSigmoid', precision: 'float32', inputs: { x: [4, 6] }, attributes: { alpha: attr.float(1 / 6) }, values: { x: spread(24, 9, -5, 5) } },
  { name: 'HardSigmoid default alpha 0.2 beta 0.5', op: 'HardSigmoid', precision: 'float32', inputs: { x: [3, 4] }, values: { x: pseudoRandom(12, 10, -4, 4).map((v) => (Math.abs(Math.abs(v) - 2.5) < 0.05 ? v + 0.1 : v)) } },
  { name: 'HardSwish', op: 'HardSwish', precision: 'float32', inputs: { x: [4, 6] }, values: { x: spread(24, 11, -5, 5) } },
];

describe('gradient of the convolutional op family matches central finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await expectOpGradientsMatch(c);
    });
  }
});
