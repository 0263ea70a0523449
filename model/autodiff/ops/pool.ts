/**
 * MaxPool and AveragePool (2-D, NCHW).
 *
 * MaxPool: in training the forward node also emits ONNX's `Indices` output (flat positions into the
 * whole input, padding excluded, per the MaxPool spec), and the gradient scatters dY to those positions
 * with ScatterElements(reduction = 'add'), which is exact for overlapping windows and ceil_mode too.
 * (A mask built with broadcast Equal/Where over [N, C, OH, kh, OW, kw] measured about 4x slower in
 * ONNX Runtime's CPU kernels than the scatter, even for 2x2/2 pooling.)
 *
 * AveragePool: dX is the transposed convolution of dY / count with an all-ones kernel, one channel at a
 * time (N*C folded into the batch axis); `count` is the window size, or, for count_include_pad = 0 with
 * padding, the per-output number of real input cells (a constant: spatial sizes are static).
 */
import { attr } from '../../graph/builder.js';
import { DataType } from '../../onnx/schema.js';
import type { NodeIR } from '../../onnx/ir.js';
import { formatShape, intAttr, intsAttr, requireInput, requireRank, shapeError, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { OpCall, OpRule } from '../rule.js';
import { requireUnitDilation, trailingRemainder, windowGeometry, type WindowGeometry } from './window.js';

function poolGeometry(node: NodeIR, x: ValueFacts): WindowGeometry {
  requireRank(node, x, 4, 'input X (fedgate supports 2-D pooling, NCHW)');
  const kernel = intsAttr(node, 'kernel_shape');
  if (kernel === undefined || kernel.length !== 2) {
    throw unsupportedAttribute(node, `kernel_shape ${kernel === undefined ? 'missing' : `[${kernel.join(', ')}]`}; expected two integers`);
  }
  return windowGeometry(
    node,
    [x.shape[2] as number, x.shape[3] as number],
    [kernel[0] as number, kernel[1] as number],
    intAttr(node, 'ceil_mode', 0) !== 0,
  );
}

function pooledFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): { x: ValueFacts; geometry: WindowGeometry } {
  const x = requireInput(node, inputs, 0);
  return { x, geometry: poolGeometry(node, x) };
}

export const MaxPool: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const { x, geometry } = pooledFacts(node, inputs);
    if (intAttr(node, 'storage_order', 0) !== 0) {
      throw unsupportedAttribute(node, 'storage_order 1 (column-major indices); expected 0');
    }
    const shape = [x.shape[0] as number, x.shape[1] as number, ...geometry.output];
    return [
      { elemType: x.elemType, shape },
      { elemType: DataType.INT64, shape },
    ];
  },
  emit(node, inputs, _facts, ctx) {
    const outputs = node.outputs.map((name) => (name === '' ? '' : ctx.builder.fresh(name)));
    if (ctx.mode === 'train' && (outputs[1] === undefined || outputs[1] === '')) {
      outputs[1] = ctx.builder.fresh(`${node.outputs[0] ?? 'maxpool'}/indices`);
    }
    ctx.builder.appendNode('MaxPool', inputs, outputs, node.attributes);
    return { outputs: outputs.slice(0, node.outputs.length), saved: { indices: outputs[1] ?? '' } };
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const flatSize = ctx.op('Reshape', [ctx.op('Size', [x]), ctx.builder.int64s([1])]);
    const zeros = ctx.op('ConstantOfShape', [flatSize], {
      value: attr.tensor({ name: 'value', dataType: ctx.floatType, dims: [1], data: new Uint8Array(ctx.floatType === DataType.DOUBLE ? 8 : 4) }),
    });
    const flatIndices = ctx.op('Reshape', [call.saved['indices'] as string, ctx.builder.int64s([-1])]);
    const flatGrad = ctx.op('Reshape', [grad, ctx.builder.int64s([-1])]);
    const scattered = ctx.op('ScatterElements', [zeros, flatIndices, flatGrad], {
      axis: attr.int(0),
      reduction: attr.string('add'),
    });
    return [ctx.reshapeLike(scattered, x)];
  },
};

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
    return [{ elemType: x.elemType, shape: [x.shape[0] as number, x.shape[1] as number, ...geometry.output] }];
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
