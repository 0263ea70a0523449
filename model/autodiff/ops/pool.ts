/**
 * MaxPool and AveragePool (2-D NCHW, and 1-D NCL through the 2-D geometry of a height-1 image), and
 * GlobalAveragePool / GlobalMaxPool (any spatial rank).
 *
 * MaxPool: the gradient sends each window's dY to the window's first maximum in row-major order (the
 * cell ONNX's `Indices` output and PyTorch pick on ties), in one of three forms chosen per node
 * (maxPoolGradient below); the forms were chosen by ONNX Runtime kernel times on the zoo CNN's pools.
 * (A mask built with broadcast Equal/Where over [N, C, OH, kh, OW, kw] measured about 4x slower than the
 * scatter, even for 2x2/2 pooling.)
 *
 * AveragePool: dX is the transposed convolution of dY / count with an all-ones kernel, one channel at a
 * time (N*C folded into the batch axis); `count` is the window size, or, for count_include_pad = 0 with
 * padding, the per-output number of real input cells (a constant: spatial sizes are static).
 */
import { attr, type AttributeMap } from '../../graph/builder.js';
import { DataType } from '../../onnx/schema.js';
import type { NodeIR } from '../../onnx/ir.js';
import { formatShape, intAttr, intsAttr, requireInput, shapeError, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { GradContext, OpCall, OpRule } from '../rule.js';
import { liftTo2d, requireUnitDilation, spatialRank, trailingRemainder, windowGeometry, windowSpan, type WindowGeometry } from './window.js';

/** Window geometry of a pooling node, 2-D or 1-D (lifted to a height-1 image: liftTo2d). */
function poolGeometry(node: NodeIR, x: ValueFacts): WindowGeometry {
  const rank = spatialRank(node, x.shape.length, 'input X');
  const kernel = intsAttr(node, 'kernel_shape');
  if (kernel === undefined || kernel.length !== rank) {
    throw unsupportedAttribute(node, `kernel_shape ${kernel === undefined ? 'missing' : `[${kernel.join(', ')}]`}; expected ${rank} integer(s)`);
  }
  const [lifted, input, window] =
    rank === 1
      ? [liftTo2d(node), [1, x.shape[2] as number] as const, [1, kernel[0] as number] as const]
      : [node, [x.shape[2] as number, x.shape[3] as number] as const, [kernel[0] as number, kernel[1] as number] as const];
  return windowGeometry(lifted, input, window, intAttr(node, 'ceil_mode', 0) !== 0);
}

/** [N, C, ...pooled spatial sizes] (one size for 1-D). */
function pooledShape(x: ValueFacts, geometry: WindowGeometry): number[] {
  const spatial = x.shape.length === 3 ? [geometry.output[1]] : [...geometry.output];
  return [x.shape[0] as number, x.shape[1] as number, ...spatial];
}

function pooledFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): { x: ValueFacts; geometry: WindowGeometry } {
  const x = requireInput(node, inputs, 0);
  return { x, geometry: poolGeometry(node, x) };
}

/**
 * Which gradient form a MaxPool node gets in training (all exact, with the same tie rule):
 * - 'argmax': square 2-D windows that tile the input (kernel = stride = k >= 2, no padding or dilation,
 *   k divides H and W) and a model that does not read Indices. The forward node is ONNX Runtime's fast
 *   MaxPool without Indices (with them it runs a generic per-window loop, about 5x slower on the zoo
 *   CNN's first pool); the backward finds each window's first maximum again (firstMaxIndices) and
 *   writes dY there with MaxUnpool.
 * - 'unpool': other windows that do not overlap (each input cell in at most one window) and fit
 *   MaxUnpool's output-size rule: the forward emits Indices, the backward writes dY to them with
 *   MaxUnpool (about 4x faster than the scatter).
 * - 'scatter': overlapping windows (or a ceil_mode window past the input): the forward emits Indices,
 *   ScatterElements(reduction = 'add') sums the contributions of windows that share a maximum.
 * MaxUnpool has only a float kernel in ONNX Runtime, so float64 graphs (gradient checks) scatter the same
 * indices instead.
 */
type MaxPoolGradient = 'argmax' | 'unpool' | 'scatter';

function maxPoolGradient(node: NodeIR, x: ValueFacts, g: WindowGeometry): MaxPoolGradient {
  const k = g.kernel[0];
  const tiling =
    x.shape.length === 4 &&
    k >= 2 &&
    g.kernel[1] === k &&
    g.strides[0] === k &&
    g.strides[1] === k &&
    g.dilations[0] === 1 &&
    g.dilations[1] === 1 &&
    g.pads.every((p) => p === 0) &&
    g.input[0] % k === 0 &&
    g.input[1] % k === 0;
  const indicesUsed = (node.outputs[1] ?? '') !== '';
  if (tiling && !indicesUsed) return 'argmax';
  // MaxUnpool refuses an output smaller than the one its attributes imply (a ceil_mode window that
  // reaches past the input).
  const fits = (axis: 0 | 1): boolean =>
    ((g.output[axis] as number) - 1) * (g.strides[axis] as number) + (g.kernel[axis] as number) - (g.pads[axis] as number) - (g.pads[axis + 2] as number) <=
    (g.input[axis] as number);
  const disjoint = (axis: 0 | 1): boolean => windowSpan(g, axis) <= (g.strides[axis] as number);
  return disjoint(0) && disjoint(1) && fits(0) && fits(1) ? 'unpool' : 'scatter';
}

export const MaxPool: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const { x, geometry } = pooledFacts(node, inputs);
    if (intAttr(node, 'storage_order', 0) !== 0) {
      throw unsupportedAttribute(node, 'storage_order 1 (column-major indices); expected 0');
    }
    const shape = pooledShape(x, geometry);
    return [
      { elemType: x.elemType, shape },
      { elemType: DataType.INT64, shape },
    ];
  },
  emit(node, inputs, inputFacts, ctx) {
    const outputs = node.outputs.map((name) => (name === '' ? '' : ctx.builder.fresh(name)));
    const { x, geometry } = pooledFacts(node, inputFacts);
    if (ctx.mode === 'train' && maxPoolGradient(node, x, geometry) !== 'argmax' && (outputs[1] === undefined || outputs[1] === '')) {
      outputs[1] = ctx.builder.fresh(`${node.outputs[0] ?? 'maxpool'}/indices`);
    }
    ctx.builder.appendNode('MaxPool', inputs, outputs, node.attributes);
    return { outputs: outputs.slice(0, node.outputs.length), saved: { indices: outputs[1] ?? '' } };
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const { x: xFacts, geometry } = pooledFacts(call.node, call.inputFacts);
    const form = maxPoolGradient(call.node, xFacts, geometry);
    const indices = form === 'argmax' ? firstMaxIndices(ctx, x, call.outputs[0] as string, xFacts, geometry.kernel[0]) : (call.saved['indices'] as string);
    if (form !== 'scatter' && ctx.floatType === DataType.FLOAT) {
      return [ctx.op('MaxUnpool', [grad, indices, ctx.shapeOf(x)], unpoolAttributes(geometry, xFacts.shape.length === 3))];
    }
    const flatSize = ctx.op('Reshape', [ctx.op('Size', [x]), ctx.builder.int64s([1])]);
    const zeros = ctx.op('ConstantOfShape', [flatSize], {
      value: attr.tensor({ name: 'value', dataType: ctx.floatType, dims: [1], data: new Uint8Array(ctx.floatType === DataType.DOUBLE ? 8 : 4) }),
    });
    const flatIndices = ctx.op('Reshape', [indices, ctx.builder.int64s([-1])]);
    const flatGrad = ctx.op('Reshape', [grad, ctx.builder.int64s([-1])]);
    const scattered = ctx.op('ScatterElements', [zeros, flatIndices, flatGrad], {
      axis: attr.int(0),
      reduction: attr.string('add'),
    });
    return [ctx.reshapeLike(scattered, x)];
  },
};

/** MaxUnpool's attributes for a pool's (resolved) geometry, 1-D or 2-D. */
function unpoolAttributes(g: WindowGeometry, oneD: boolean): AttributeMap {
  const [p0, p1, p2, p3] = g.pads;
  return oneD
    ? { kernel_shape: attr.ints([g.kernel[1]]), strides: attr.ints([g.strides[1]]), pads: attr.ints([p1, p3]) }
    : { kernel_shape: attr.ints(g.kernel), strides: attr.ints(g.strides), pads: attr.ints([p0, p1, p2, p3]) };
}

/**
 * ONNX MaxPool Indices (flat positions in x) of each k x k window's first maximum, for windows that tile
 * x [N, C, H, W] and their maxima y: SpaceToDepth puts a window's k*k cells on one axis in row-major
 * order (a, b), Equal against y marks the maxima, and a chain of Where from the last cell to the first
 * keeps the first one's offset a W + b. The flat index adds n C H W + c H W + k oh W + k ow, whose
 * (c, oh, ow) part is built from constant Ranges (ONNX Runtime folds it when the session loads). (ArgMax
 * over the k*k axis and decoding t = a k + b measured about twice as slow in ONNX Runtime's CPU kernels.)
 */
function firstMaxIndices(ctx: GradContext, x: string, y: string, facts: ValueFacts, k: number): string {
  const [channels, height, width] = [facts.shape[1] as number, facts.shape[2] as number, facts.shape[3] as number];
  const [rows, cols] = [height / k, width / k];
  const cells = channels * rows * cols;
  const int64 = (value: number): string => ctx.builder.constant(DataType.INT64, [], [value], 'index');
  const range = (count: number, step: number): string => ctx.op('Range', [int64(0), int64(count * step), int64(step)], {}, 'pool_offsets');
  const windows = ctx.op('Reshape', [ctx.op('SpaceToDepth', [x], { blocksize: attr.int(k) }), ctx.builder.int64s([-1, k * k, cells])]);
  const isMax = ctx.op('Equal', [windows, ctx.op('Reshape', [y, ctx.builder.int64s([-1, 1, cells])])], {}, 'pool_is_max');
  const planes = ctx.builder.node('Split', [isMax], { outputs: k * k, attributes: { axis: attr.int(1) } });
  const offset = (t: number): string => int64(Math.floor(t / k) * width + (t % k));
  let tapOffset = offset(k * k - 1);
  for (let t = k * k - 2; t >= 0; t--) tapOffset = ctx.op('Where', [planes[t] as string, offset(t), tapOffset], {}, 'pool_tap');
  const windowStart = ctx.op('Add', [
    ctx.op('Reshape', [range(channels, height * width), ctx.builder.int64s([channels, 1, 1])]),
    ctx.op('Add', [ctx.op('Reshape', [range(rows, k * width), ctx.builder.int64s([rows, 1])]), range(cols, k)]),
  ]);
  const batch = ctx.op('Gather', [ctx.shapeOf(x), int64(0)], { axis: attr.int(0) });
  const imageStart = ctx.op('Reshape', [
    ctx.op('Range', [int64(0), ctx.op('Mul', [batch, int64(channels * height * width)]), int64(channels * height * width)], {}, 'pool_offsets'),
    ctx.builder.int64s([-1, 1, 1, 1]),
  ]);
  const start = ctx.op('Add', [imageStart, windowStart]);
  return ctx.op('Add', [start, ctx.op('Reshape', [tapOffset, ctx.builder.int64s([-1, channels, rows, cols])])], {}, 'pool_indices');
}

/** Number of real (non-padding) input cells under each output window, row-major [OH, OW]. */
function windowCounts(g: WindowGeometry): number[] {
  const counts: number[] = [];
  const covered = (axis: 0 | 1, index: number): number => {
    const start = index * (g.strides[axis] as number) - (g.pads[axis] as number);
    const end = start + (g.kernel[axis] as number);
    return Math.min(end, g.input[axis] as number) - Math.max(start, 0);
  };
  for (let p = 0; p < g.output[0]; p++) for (let q = 0; q < g.output[1]; q++) counts.push(covered(0, p) * covered(1, q));
  return counts;
}

export const AveragePool: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const { x, geometry } = pooledFacts(node, inputs);
    requireUnitDilation(node, geometry);
    if (intAttr(node, 'ceil_mode', 0) !== 0) {
      throw unsupportedAttribute(node, 'ceil_mode 1; fedgate differentiates AveragePool with ceil_mode 0 only');
    }
    return [{ elemType: x.elemType, shape: pooledShape(x, geometry) }];
  },
  backward(call: OpCall, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const xFacts = call.inputFacts[0] as ValueFacts;
    const g = poolGeometry(call.node, xFacts);
    const padded = g.pads.some((p) => p > 0);
    const includePad = intAttr(call.node, 'count_include_pad', 0) !== 0;
    const divisor =
      padded && !includePad
        ? ctx.builder.constant(ctx.floatType, [g.output[0], g.output[1]], windowCounts(g), 'pool_counts')
        : ctx.scalar(g.kernel[0] * g.kernel[1]);
    const scaled = ctx.op('Div', [grad, divisor]);
    const perChannel = ctx.op('Reshape', [scaled, ctx.builder.int64s([-1, 1, g.output[0], g.output[1]])]);
    const ones = ctx.builder.constant(
      ctx.floatType,
      [1, 1, g.kernel[0], g.kernel[1]],
      new Array<number>(g.kernel[0] * g.kernel[1]).fill(1),
      'pool_ones',
    );
    const spread = ctx.op('ConvTranspose', [perChannel, ones], {
      kernel_shape: attr.ints(g.kernel),
      strides: attr.ints(g.strides),
      pads: attr.ints(g.pads),
      output_padding: attr.ints([trailingRemainder(g, 0), trailingRemainder(g, 1)]),
    });
    return [ctx.reshapeLike(spread, x)];
  },
};

/** Spatial axes [2, rank) of an N, C, ... tensor. */
const spatialAxes = (rank: number): number[] => Array.from({ length: rank - 2 }, (_, i) => i + 2);

function globalPoolFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] {
  const x = requireInput(node, inputs, 0);
  if (x.shape.length < 3) throw shapeError(node, `input ${formatShape(x.shape)} needs rank >= 3 (N, C, spatial ...)`);
  return [{ elemType: x.elemType, shape: [x.shape[0] as number, x.shape[1] as number, ...spatialAxes(x.shape.length).map(() => 1)] }];
}

/**
 * GlobalAveragePool (what torch exports for AdaptiveAvgPool to size 1, any spatial rank):
 * dX = dY / (spatial size), broadcast over the spatial axes.
 */
export const GlobalAveragePool: OpRule = {
  differentiableInputs: [0],
  infer: globalPoolFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const shape = call.inputFacts[0]?.shape ?? [];
    const count = spatialAxes(shape.length).reduce((n, axis) => n * (shape[axis] as number), 1);
    const x = call.inputs[0] as string;
    return [ctx.op('Expand', [ctx.op('Div', [grad, ctx.scalar(count)]), ctx.shapeOf(x)])];
  },
};

/**
 * GlobalMaxPool (AdaptiveMaxPool to size 1): the gradient goes to the positions equal to the maximum.
 * A tie (measure zero for real-valued activations) gives every tied position the full gradient, where
 * PyTorch picks one.
 */
export const GlobalMaxPool: OpRule = {
  differentiableInputs: [0],
  infer: globalPoolFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const atMax = ctx.op('Equal', [x, call.outputs[0] as string]);
    return [ctx.op('Where', [atMax, ctx.op('Expand', [grad, ctx.shapeOf(x)]), ctx.scalar(0)])];
  },
};
