/**
 * Small forward models for the DP-SGD tests, one per family of per-example forms: an MLP (Gemm), a CNN
 * (Conv, grouped Conv with stride, GroupNorm as torch exports it, LayerNorm), a transformer-ish block
 * (MatMul on [B, T, D], attention, LayerNorm, bias Add on [B, T, D]) and an embedding model (Gather).
 */
import { GraphBuilder, attr } from '../../../model/graph/builder.js';
import { DataType } from '../../../model/onnx/schema.js';
import type { ForwardModel, NamedInput, ParameterSpec } from '../../../model/train/forward-model.js';
import { pseudoRandom } from './ort.js';

export class ModelSketch {
  readonly g = new GraphBuilder('forward');
  readonly parameters: ParameterSpec[] = [];
  private readonly values: number[] = [];

  constructor(private seed: number) {
    this.g.reserve(['input']);
  }

  param(name: string, shape: readonly number[], scale = 0.5, role: ParameterSpec['role'] = 'trainable'): string {
    this.g.reserve([name]);
    this.parameters.push({ name, shape: [...shape], role });
    const size = shape.reduce((n, d) => n * d, 1);
    this.values.push(...(role === 'running_var' ? new Array<number>(size).fill(1) : pseudoRandom(size, this.seed++, -scale, scale).map(Math.fround)));
    return name;
  }

  finish(logits: string, inputShape: readonly number[], classes: number, namedInputs?: NamedInput[]): ForwardModel {
    const graph = this.g.build();
    return {
      nodes: graph.nodes,
      constants: graph.initializers,
      parameters: this.parameters,
      input: namedInputs?.[0]?.source ?? 'input',
      inputShape: [...(namedInputs?.[0]?.shape ?? inputShape)],
      ...(namedInputs === undefined ? {} : { namedInputs }),
      logits,
      classes,
      initialParameters: Float32Array.from(this.values),
    };
  }
}

export const MLP_SHAPE = [6];
export function mlpModel(): ForwardModel {
  const s = new ModelSketch(11);
  const g = s.g;
  const h = g.op('Relu', [g.op('Gemm', ['input', s.param('fc1.weight', [5, 6]), s.param('fc1.bias', [5])], { transB: attr.int(1) })]);
  const logits = g.op('Gemm', [h, s.param('fc2.weight', [5, 3]), s.param('fc2.bias', [1, 3])], { alpha: attr.float(0.7), beta: attr.float(1.3) }, 'logits');
  return s.finish(logits, MLP_SHAPE, 3);
}

export const CNN_SHAPE = [2, 8, 8];
export function cnnModel(): ForwardModel {
  const s = new ModelSketch(21);
  const g = s.g;
  const conv1 = g.op('Conv', ['input', s.param('conv1.weight', [4, 2, 3, 3]), s.param('conv1.bias', [4])], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
  const relu1 = g.op('Relu', [conv1]);
  // Grouped, strided convolution: [B, 4, 8, 8] -> [B, 4, 4, 4].
  const conv2 = g.op('Conv', [relu1, s.param('conv2.weight', [4, 2, 3, 3]), s.param('conv2.bias', [4])], {
    kernel_shape: attr.ints([3, 3]),
    pads: attr.ints([1, 1, 1, 1]),
    strides: attr.ints([2, 2]),
    group: attr.int(2),
  });
  // GroupNorm(2 groups) as torch 1.13 exports it.
  const grouped = g.op('Reshape', [conv2, g.int64s([0, 2, -1])]);
  const normed = g.op('InstanceNormalization', [grouped, g.constant(DataType.FLOAT, [2], [1, 1]), g.constant(DataType.FLOAT, [2], [0, 0])], { epsilon: attr.float(1e-5) });
  const back = g.op('Reshape', [normed, g.int64s([0, 4, 4, 4])]);
  const affine = g.op('Add', [g.op('Mul', [back, s.param('gn.weight', [4, 1, 1])]), s.param('gn.bias', [4, 1, 1])]);
  const flat = g.op('Flatten', [g.op('Relu', [affine])], { axis: attr.int(1) });
  const ln = g.op('LayerNormalization', [flat, s.param('ln.weight', [64]), s.param('ln.bias', [64])], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
  const logits = g.op('Gemm', [ln, s.param('fc.weight', [3, 64], 0.2), s.param('fc.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, CNN_SHAPE, 3);
}

export const BLOCK_SHAPE = [4, 6];
export function transformerModel(): ForwardModel {
  const s = new ModelSketch(31);
  const g = s.g;
  const x = 'input';
  const q = g.op('MatMul', [x, s.param('attn.q', [6, 6])]);
  const k = g.op('MatMul', [x, s.param('attn.k', [6, 6])]);
  const v = g.op('Add', [g.op('MatMul', [x, s.param('attn.v', [6, 6])]), s.param('attn.v_bias', [6])]);
  const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([0, 2, 1]) })]), g.scalar(1 / Math.sqrt(6))]);
  const attended = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.int(-1) }), v]);
  const residual = g.op('Add', [attended, x]);
  const ln = g.op('LayerNormalization', [residual, s.param('ln.weight', [6]), s.param('ln.bias', [6])], { axis: attr.int(-1) });
  // Feed-forward with a transposed weight read through Transpose, and a learned position scale [T, D].
  const up = g.op('Relu', [g.op('Add', [g.op('MatMul', [ln, g.op('Transpose', [s.param('ff.up', [8, 6])], { perm: attr.ints([1, 0]) })]), s.param('ff.up_bias', [8])])]);
  const down = g.op('Mul', [g.op('MatMul', [up, s.param('ff.down', [8, 6])]), s.param('pos.scale', [4, 6])]);
  const pooled = g.op('ReduceMean', [g.op('Add', [down, ln]), g.int64s([1])], { keepdims: attr.int(0) });
  const logits = g.op('Gemm', [pooled, s.param('head.weight', [6, 3]), s.param('head.bias', [3])], {}, 'logits');
  return s.finish(logits, BLOCK_SHAPE, 3);
}

export const VOCABULARY = 7;
export function embeddingModel(): ForwardModel {
  const s = new ModelSketch(41);
  const g = s.g;
  g.reserve(['ids']);
  const embedded = g.op('Gather', [s.param('embedding', [VOCABULARY, 4]), 'ids'], { axis: attr.int(0) });
  const positioned = g.op('Add', [embedded, s.param('position', [5, 4])]);
  const pooled = g.op('ReduceMean', [positioned, g.int64s([1])], { keepdims: attr.int(0) });
  const logits = g.op('Gemm', [pooled, s.param('head.weight', [3, 4]), s.param('head.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, [5], 3, [{ name: 'ids', source: 'ids', dtype: 'int64', shape: [5], idRange: VOCABULARY }]);
}

/** A model with BatchNorm (refused under DP-SGD). */
export function batchNormModel(): ForwardModel {
  const s = new ModelSketch(51);
  const g = s.g;
  const conv = g.op('Conv', ['input', s.param('conv.weight', [2, 2, 3, 3]), s.param('conv.bias', [2])], { kernel_shape: attr.ints([3, 3]) });
  const scale = s.param('bn.weight', [2]);
  const shift = s.param('bn.bias', [2]);
  const bn = g.op('BatchNormalization', [conv, scale, shift, s.param('bn.mean', [2], 0.5, 'running_mean'), s.param('bn.var', [2], 0.5, 'running_var')], { epsilon: attr.float(1e-5) }, 'bn');
  const flat = g.op('Flatten', [g.op('GlobalAveragePool', [bn])], { axis: attr.int(1) });
  const logits = g.op('Gemm', [flat, s.param('fc.weight', [3, 2]), s.param('fc.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, CNN_SHAPE, 3);
}

/** A parameter read by ConvTranspose, which has no per-example form. */
export function convTransposeModel(): ForwardModel {
  const s = new ModelSketch(61);
  const g = s.g;
  const up = g.op('ConvTranspose', ['input', s.param('up.weight', [2, 1, 2, 2])], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, 'upsample');
  const flat = g.op('Flatten', [g.op('GlobalAveragePool', [up])], { axis: attr.int(1) });
  const logits = g.op('Gemm', [flat, s.param('fc.weight', [3, 1]), s.param('fc.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, CNN_SHAPE, 3);
}

export const MISC_SHAPE = [3, 6];
/**
 * The less common per-example forms: 1-D Conv, a parameter on the left of MatMul, Sub/Div/Max/Where with
 * parameters, a parameter through Unsqueeze and Reshape, constant-index Gather from a parameter table.
 */
export function miscModel(): ForwardModel {
  const s = new ModelSketch(71);
  const g = s.g;
  const conv = g.op('Conv', ['input', s.param('conv1d.weight', [4, 3, 3]), s.param('conv1d.bias', [4])], { kernel_shape: attr.ints([3]), pads: attr.ints([1, 1]) }); // [B, 4, 6]
  const mixed = g.op('MatMul', [s.param('mix', [2, 4]), conv]); // [B, 2, 6]
  const centred = g.op('Sub', [mixed, g.op('Unsqueeze', [s.param('centre', [6]), g.int64s([0])])]);
  const divisor = g.op('Add', [g.op('Abs', [s.param('divisor', [2, 1])]), g.scalar(1)]);
  const scaled = g.op('Div', [centred, divisor]);
  const floor = g.op('Reshape', [s.param('floor', [12]), g.int64s([2, 6])]);
  const clipped = g.op('Max', [scaled, floor]);
  const positive = g.op('Greater', [mixed, g.scalar(0)]);
  const chosen = g.op('Where', [positive, clipped, s.param('otherwise', [6])]);
  const table = s.param('table', [5, 6]);
  const rows = g.op('Gather', [table, g.int64s([1, 3])], { axis: attr.int(0) }); // [2, 6], constant ids
  const biased = g.op('Add', [chosen, rows]);
  const flat = g.op('Flatten', [biased], { axis: attr.int(1) });
  const logits = g.op('Gemm', [flat, s.param('head.weight', [3, 12], 0.3), s.param('head.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, MISC_SHAPE, 3);
}

export const SEQUENCE_SHAPE = [3, 4];
/** A bidirectional GRU and a forward LSTM over a batch-first [B, 3, 4] sequence (torch's export layout). */
export function recurrentModel(): ForwardModel {
  const s = new ModelSketch(81);
  const g = s.g;
  const timeMajor = g.op('Transpose', ['input'], { perm: attr.ints([1, 0, 2]) }); // [3, B, 4]
  const [gruY, gruH] = g.node('GRU', [timeMajor, s.param('gru.W', [2, 15, 4]), s.param('gru.R', [2, 15, 5]), s.param('gru.B', [2, 30])], {
    outputs: 2,
    attributes: { hidden_size: attr.int(5), direction: attr.string('bidirectional'), linear_before_reset: attr.int(1) },
  }) as [string, string];
  const gruSeq = g.op('Reshape', [g.op('Transpose', [gruY], { perm: attr.ints([0, 2, 1, 3]) }), g.int64s([3, -1, 10])]); // [3, B, 10]
  const [, lstmH] = g.node('LSTM', [gruSeq, s.param('lstm.W', [1, 12, 10]), s.param('lstm.R', [1, 12, 3]), s.param('lstm.B', [1, 24])], {
    outputs: 2,
    attributes: { hidden_size: attr.int(3) },
  }) as [string, string];
  const features = g.op('Concat', [g.op('Flatten', [g.op('Transpose', [gruH], { perm: attr.ints([1, 0, 2]) })], { axis: attr.int(1) }), g.op('Squeeze', [lstmH, g.int64s([0])])], { axis: attr.int(1) });
  const logits = g.op('Gemm', [features, s.param('head.weight', [3, 13]), s.param('head.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, SEQUENCE_SHAPE, 3);
}

/** Parameters meeting a time-major [T, B, D] value (batch axis 1): MatMul, bias Add, LayerNorm, Gemm. */
export function timeMajorModel(): ForwardModel {
  const s = new ModelSketch(91);
  const g = s.g;
  const timeMajor = g.op('Transpose', ['input'], { perm: attr.ints([1, 0, 2]) }); // [3, B, 4]
  const projected = g.op('Add', [g.op('MatMul', [timeMajor, s.param('proj.weight', [4, 6])]), s.param('proj.bias', [6])]);
  const normed = g.op('LayerNormalization', [g.op('Tanh', [projected]), s.param('ln.weight', [6]), s.param('ln.bias', [6])], { axis: attr.int(-1) });
  const pooled = g.op('ReduceMean', [normed, g.int64s([0])], { keepdims: attr.int(0) }); // [B, 6]
  const logits = g.op('Gemm', [pooled, s.param('head.weight', [3, 6]), s.param('head.bias', [3])], { transB: attr.int(1) }, 'logits');
  return s.finish(logits, SEQUENCE_SHAPE, 3);
}

/**
 * A projection on rows [B*T, D] flattened from [B, T, D] (a value whose layout says which row is whose):
 * computed per example in the [B, T, D] layout and flattened after.
 */
export function mergedRowsModel(): ForwardModel {
  const s = new ModelSketch(95);
  const g = s.g;
  const timeMajor = g.op('Transpose', ['input'], { perm: attr.ints([1, 0, 2]) }); // [3, B, 4]
  const rows = g.op('Reshape', [g.op('Transpose', [timeMajor], { perm: attr.ints([1, 0, 2]) }), g.int64s([-1, 4])]); // [B*3, 4]
  const projected = g.op('Gemm', [rows, s.param('proj.weight', [3, 4])], { transB: attr.int(1) }, 'projected_rows');
  const back = g.op('ReduceMean', [g.op('Reshape', [projected, g.int64s([-1, 3, 3])]), g.int64s([1])], { keepdims: attr.int(0) });
  return s.finish(back, SEQUENCE_SHAPE, 3);
}

/**
 * Attention-style plumbing: [T, B, 4] split into heads [T, B*2, 2], per-head scores (MatMul of two
 * batched values), then rows [T*B, 4] projected by a parameter: the rows' layout (t outer, b inner) is
 * derived through the Reshapes, Transposes and MatMuls (batch-layout.ts).
 */
export function headRowsModel(): ForwardModel {
  const s = new ModelSketch(97);
  const g = s.g;
  const timeMajor = g.op('Transpose', ['input'], { perm: attr.ints([1, 0, 2]) }); // [3, B, 4]
  const split = g.op('Reshape', [timeMajor, g.int64s([3, -1, 2])]); // [3, B*2, 2]
  const heads = g.op('Transpose', [split], { perm: attr.ints([1, 0, 2]) }); // [B*2, 3, 2]
  const scores = g.op('Softmax', [g.op('MatMul', [heads, g.op('Transpose', [heads], { perm: attr.ints([0, 2, 1]) })])], { axis: attr.int(-1) }); // [B*2, 3, 3]
  const mixed = g.op('Transpose', [g.op('MatMul', [scores, heads])], { perm: attr.ints([1, 0, 2]) }); // [3, B*2, 2]
  const rows = g.op('Reshape', [mixed, g.int64s([-1, 4])]); // [3*B, 4]
  const projected = g.op('Gemm', [rows, s.param('proj.weight', [3, 4])], { transB: attr.int(1) }, 'projected_rows');
  const back = g.op('ReduceMean', [g.op('Reshape', [projected, g.int64s([3, -1, 3])]), g.int64s([0])], { keepdims: attr.int(0) });
  return s.finish(back, SEQUENCE_SHAPE, 3);
}

/** Rows [3*B, 2] out of a ReduceMean: the batch's place in them is not derived, so the projection is refused. */
export function tiledRowsModel(): ForwardModel {
  const s = new ModelSketch(99);
  const g = s.g;
  const split = g.op('Reshape', ['input', g.int64s([-1, 2, 2])]); // [B*3, 2, 2]
  const rows = g.op('ReduceMean', [split, g.int64s([1])], { keepdims: attr.int(0) }); // [B*3, 2]
  const projected = g.op('Gemm', [rows, s.param('proj.weight', [3, 2])], { transB: attr.int(1) }, 'projected_rows');
  const back = g.op('ReduceMean', [g.op('Reshape', [projected, g.int64s([-1, 3, 3])]), g.int64s([1])], { keepdims: attr.int(0) });
  return s.finish(back, SEQUENCE_SHAPE, 3);
}
