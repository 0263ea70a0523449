/**
 * Conv and ConvTranspose, 2-D (NCHW) and 1-D (NCL, lifted to a height-1 image by liftTo2d), any
 * strides, pads and groups, dilation 1.
 *
 * Conv gradients, all expressed with ops ORT runs through its im2col + MLAS GEMM path:
 * - input:  the adjoint of a strided convolution is the transposed convolution with the same weight,
 *           strides, pads and groups; output_padding restores the rows a strided window skipped at the end.
 * - weight: dW[m, c, i, j] = sum_{n, p, q} dY[n, m, p, q] X[n, c, s*p + i - pad, s*q + j - pad], i.e. a
 *           convolution of X (batch and channel axes swapped) with dY (likewise swapped) as the kernel,
 *           dilated by the forward stride. Rows the forward windows never read are sliced off first.
 *           With G groups, X's channels are regrouped as [C/G, G*N] so that one grouped convolution pairs
 *           each group's inputs with that group's output gradients only (convWeightGradient).
 * - bias:   sum of dY over N and the spatial axes.
 * ConvTranspose is the adjoint of Conv: its input gradient is the Conv of dY with the same weight,
 * strides, pads and groups, and its weight gradient is Conv's weight gradient with the roles of input
 * and output exchanged (dY plays the input, X the output gradient).
 * A group-1 or depthwise Conv with few output positions per image (GEMM_MAX_POSITIONS,
 * DEPTHWISE_MAX_POSITIONS) is emitted in a lowered form instead, forward and gradients, where ORT's
 * per-image GEMMs would be (nearly) matrix-vector products (conv-taps.ts); its emit saves what its
 * backward reuses.
 */
import { attr, type GraphBuilder } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { formatShape, intsAttr, requireInput, shapeError, stringAttr, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { GradContext, OpRule } from '../rule.js';
import {
  channelMatrix,
  columnsOfInput,
  convLowering,
  imageOf,
  inputOfColumns,
  liveWeight,
  rowsOf,
  tapPlan,
  wholeKernelGradient,
  type TapPlan,
} from './conv-taps.js';
import { copyNode, savedValue } from './emitted.js';
import {
  groupOf,
  liftShape,
  liftTo2d,
  requireUnitDilation,
  spatialRank,
  trailingRemainder,
  windowGeometry,
  type WindowGeometry,
} from './window.js';

/** Geometry of a 2-D (or lifted 1-D) convolution window sliding over `input` [N, C, H, W]. */
function geometryOver(node2d: NodeIR, input: readonly number[], weight: readonly number[]): WindowGeometry {
  return windowGeometry(node2d, [input[2] as number, input[3] as number], [weight[2] as number, weight[3] as number]);
}

/**
 * dW [M, C/G, kh, kw] of Y = Conv(input, W) with geometry `g` and `group` groups, from the gradient of Y
 * (gradOutput [N, M, P, Q]); `inputShape` is the input's static shape [N, C, H, W].
 */
function convWeightGradient(ctx: GradContext, input: string, inputShape: readonly number[], gradOutput: string, g: WindowGeometry, group: number): string {
  const [, channels, height, width] = inputShape as [number, number, number, number];
  const swap = { perm: attr.ints([1, 0, 2, 3]) };
  let inputT: string;
  if (group === 1) {
    inputT = ctx.op('Transpose', [input], swap);
  } else {
    // [N, C, H, W] -> [N, G, C/G, H, W] -> [C/G, G, N, H, W] -> [C/G, G*N, H, W]: channel g*N + n.
    const perGroup = channels / group;
    const split = ctx.op('Reshape', [input, ctx.builder.int64s([-1, group, perGroup, height, width])]);
    const moved = ctx.op('Transpose', [split], { perm: attr.ints([2, 1, 0, 3, 4]) });
    inputT = ctx.op('Reshape', [moved, ctx.builder.int64s([perGroup, -1, height, width])]);
  }
  // End padding the windows reach; negative = input rows the windows never read, dropped by Slice.
  const endPads = [0, 1].map((axis) => (g.pads[axis + 2] as number) - trailingRemainder(g, axis as 0 | 1));
  if (endPads.some((p) => p < 0)) {
    const ends = [height, width].map((size, axis) => size + Math.min(0, endPads[axis] as number));
    inputT = ctx.op('Slice', [inputT, ctx.builder.int64s([0, 0]), ctx.builder.int64s(ends), ctx.builder.int64s([2, 3])]);
  }
  const gradT = ctx.op('Transpose', [gradOutput], swap);
  const gradWT = ctx.op('Conv', [inputT, gradT], {
    pads: attr.ints([g.pads[0], g.pads[1], Math.max(0, endPads[0] as number), Math.max(0, endPads[1] as number)]),
    dilations: attr.ints(g.strides),
    group: attr.int(group),
  });
  return ctx.op('Transpose', [gradWT], swap);
}

/** The node and its window operands in 2-D form, and the ops that lift and drop the extra axis. */
interface Lifted {
  readonly node: NodeIR;
  readonly oneD: boolean;
  readonly lift: (value: string) => string;
  readonly drop: (value: string | undefined) => string | undefined;
}

function lifted(node: NodeIR, rank: number, b: GraphBuilder): Lifted {
  const oneD = spatialRank(node, rank, 'input X') === 1;
  if (!oneD) return { node, oneD, lift: (v) => v, drop: (v) => v };
  const axis = b.int64s([2]);
  return {
    node: liftTo2d(node),
    oneD,
    lift: (v) => b.op('Unsqueeze', [v, axis]),
    drop: (v) => (v === undefined ? undefined : b.op('Squeeze', [v, axis])),
  };
}

function checkWeight(node: NodeIR, x: ValueFacts, w: ValueFacts): void {
  if (w.shape.length !== x.shape.length) {
    throw shapeError(node, `weight ${formatShape(w.shape)} and input ${formatShape(x.shape)} differ in rank`);
  }
  const kernelShape = intsAttr(node, 'kernel_shape');
  if (kernelShape !== undefined && kernelShape.some((k, i) => k !== w.shape[i + 2])) {
    throw shapeError(node, `kernel_shape [${kernelShape.join(', ')}] disagrees with weight ${formatShape(w.shape)}`);
  }
}

function checkBias(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], channels: number): void {
  const b = inputs[2];
  if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== channels)) {
    throw shapeError(node, `bias ${formatShape(b.shape)}; expected [${channels}]`);
  }
}

const spatialSumAxes = (rank: number): number[] => (rank === 3 ? [0, 2] : [0, 2, 3]);

export const Conv: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const w = requireInput(node, inputs, 1);
    const rank = spatialRank(node, x.shape.length, 'input X');
    checkWeight(node, x, w);
    const group = groupOf(node);
    if (!Number.isInteger(group) || group < 1 || (w.shape[0] as number) % group !== 0) {
      throw shapeError(node, `group ${group} does not divide the ${w.shape[0]} output channels of weight ${formatShape(w.shape)}`);
    }
    if (x.shape[1] !== (w.shape[1] as number) * group) {
      throw shapeError(node, `input has ${x.shape[1]} channels, weight ${formatShape(w.shape)} with group ${group} expects ${(w.shape[1] as number) * group}`);
    }
    checkBias(node, inputs, w.shape[0] as number);
    const node2d = rank === 1 ? liftTo2d(node) : node;
    const geometry = geometryOver(node2d, liftShape(x.shape), liftShape(w.shape));
    requireUnitDilation(node, geometry);
    const spatial = rank === 1 ? [geometry.output[1]] : [...geometry.output];
    return [{ elemType: x.elemType, shape: [x.shape[0] as number, w.shape[0] as number, ...spatial] }];
  },
  emit(node, inputs, inputFacts, ctx) {
    const b = ctx.builder;
    const xShape = inputFacts[0]?.shape ?? [];
    const wShape = inputFacts[1]?.shape ?? [];
    const l = lifted(node, xShape.length, b);
    const g = geometryOver(l.node, liftShape(xShape), liftShape(wShape));
    const group = groupOf(node);
    const lowering = convLowering(liftShape(xShape), liftShape(wShape), group, g);
    if (lowering === 'conv') return { outputs: copyNode(b, node, inputs) };
    const [x, w, bias] = inputs as [string, string, string | undefined];
    const plan = tapPlan(g);
    const channels = xShape[1] as number;
    const outChannels = wShape[0] as number;
    const live = liveWeight(b, l.lift(w), liftShape(wShape), plan, ctx.floatType);
    const hasBias = bias !== undefined && bias !== '';
    if (lowering === 'gemm') {
      const columns = columnsOfInput(b, l.lift(x), channels, plan, ctx.floatType);
      const weightRows = b.op('Reshape', [live, b.int64s([outChannels, channels * plan.taps.length])], {}, 'conv_weight_rows');
      const rows = b.op('Gemm', hasBias ? [columns, weightRows, bias] : [columns, weightRows], { transB: attr.int(1) }, 'conv_gemm');
      return { outputs: [l.drop(imageOf(b, rows, outChannels, plan)) as string], saved: { columns, weightRows } };
    }
    // Depthwise: each channel's convolution is one matrix [P*Q, H*W] (its tap weights times the channel
    // matrix), and the batch's values of that channel go through it in one GEMM per channel.
    const [p, q] = g.output;
    const cells = (g.input[0] as number) * (g.input[1] as number);
    const tapWeights = b.op('Reshape', [live, b.int64s([channels, plan.taps.length])]);
    const matrix = channelMatrix(b, plan, ctx.floatType);
    const kernels = b.op('Reshape', [b.op('MatMul', [tapWeights, matrix]), b.int64s([channels, p * q, cells])], {}, 'depthwise_kernels');
    const inputT = b.op('Transpose', [b.op('Reshape', [l.lift(x), b.int64s([-1, channels, cells])])], { perm: attr.ints([1, 0, 2]) }, 'depthwise_input');
    const outputT = b.op('MatMul', [inputT, b.op('Transpose', [kernels], { perm: attr.ints([0, 2, 1]) })], {}, 'depthwise');
    let y = b.op('Reshape', [b.op('Transpose', [outputT], { perm: attr.ints([1, 0, 2]) }), b.int64s([-1, channels, p, q])]);
    if (hasBias) y = b.op('Add', [y, b.op('Reshape', [bias, b.int64s([1, channels, 1, 1])])]);
    return { outputs: [l.drop(y) as string], saved: { inputT, kernels, matrix } };
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [x, w] = call.inputs as [string, string];
    const xShape = call.inputFacts[0]?.shape ?? [];
    const wShape = call.inputFacts[1]?.shape ?? [];
    const l = lifted(call.node, xShape.length, ctx.builder);
    const g = geometryOver(l.node, liftShape(xShape), liftShape(wShape));
    const group = groupOf(call.node);
    const grad2d = l.lift(grad);
    const hasBias = call.inputs[2] !== undefined && call.inputs[2] !== '';
    const gradB = needs[2] && hasBias ? ctx.sumAxes(grad, spatialSumAxes(xShape.length), false) : undefined;
    const lowering = convLowering(liftShape(xShape), liftShape(wShape), group, g);
    if (lowering !== 'conv') {
      const [gradX, gradW] = tapGradients(call.saved, lowering, tapPlan(g), grad2d, needs, xShape[1] as number, wShape, ctx);
      return [l.drop(gradX), l.drop(gradW), gradB];
    }
    let gradX: string | undefined;
    let gradW: string | undefined;
    if (needs[0]) {
      gradX = l.drop(
        ctx.op('ConvTranspose', [grad2d, l.lift(w)], {
          kernel_shape: attr.ints(g.kernel),
          strides: attr.ints(g.strides),
          pads: attr.ints(g.pads),
          output_padding: attr.ints([trailingRemainder(g, 0), trailingRemainder(g, 1)]),
          group: attr.int(group),
        }),
      );
    }
    if (needs[1]) gradW = l.drop(convWeightGradient(ctx, l.lift(x), liftShape(xShape), grad2d, g, group));
    return [gradX, gradW, gradB];
  },
};

/** Input and weight gradients (2-D) of a Conv emitted in a lowered form, from what its emit saved. */
function tapGradients(
  saved: Readonly<Record<string, string>>,
  lowering: 'gemm' | 'depthwise',
  plan: TapPlan,
  grad: string,
  needs: readonly boolean[],
  channels: number,
  wShape: readonly number[],
  ctx: GradContext,
): [string | undefined, string | undefined] {
  const b = ctx.builder;
  const outChannels = wShape[0] as number;
  const liveShape = [outChannels, lowering === 'gemm' ? channels : 1, plan.rows[1] - plan.rows[0] + 1, plan.cols[1] - plan.cols[0] + 1];
  const weightGradient = (live: string): string => wholeKernelGradient(b, ctx.op('Reshape', [live, b.int64s(liveShape)]), liftShape(wShape), plan, ctx.floatType);
  let gradX: string | undefined;
  let gradW: string | undefined;
  if (lowering === 'gemm') {
    const gradRows = rowsOf(b, grad, outChannels, plan);
    if (needs[1]) gradW = weightGradient(ctx.op('Gemm', [gradRows, savedValue('Conv', saved, 'columns')], { transA: attr.int(1) }));
    if (needs[0]) {
      const gradColumns = ctx.op('MatMul', [gradRows, savedValue('Conv', saved, 'weightRows')]);
      gradX = inputOfColumns(b, gradColumns, channels, plan, ctx.floatType);
    }
    return [gradX, gradW];
  }
  // Depthwise (see emit): dX through each channel's matrix, dW from dY^T X per channel folded onto the taps.
  const [p, q] = plan.geometry.output;
  const [height, width] = plan.geometry.input;
  const gradT = ctx.op('Transpose', [ctx.op('Reshape', [grad, b.int64s([-1, channels, p * q])])], { perm: attr.ints([1, 0, 2]) });
  if (needs[1]) {
    const perCell = ctx.op('MatMul', [ctx.op('Transpose', [gradT], { perm: attr.ints([0, 2, 1]) }), savedValue('Conv', saved, 'inputT')]);
    const flat = ctx.op('Reshape', [perCell, b.int64s([channels, p * q * height * width])]);
    gradW = weightGradient(ctx.op('Gemm', [flat, savedValue('Conv', saved, 'matrix')], { transB: attr.int(1) }));
  }
  if (needs[0]) {
    const gradXT = ctx.op('MatMul', [gradT, savedValue('Conv', saved, 'kernels')]);
    gradX = ctx.op('Reshape', [ctx.op('Transpose', [gradXT], { perm: attr.ints([1, 0, 2]) }), b.int64s([-1, channels, height, width])]);
  }
  return [gradX, gradW];
}

/** ConvTranspose output size along each lifted axis (ONNX ConvTranspose, output_shape absent). */
function transposedOutput(node2d: NodeIR, input: readonly number[], kernel: readonly number[]): [number, number] {
  const read = (name: string, fallback: number, length: number): readonly number[] => {
    const value = intsAttr(node2d, name);
    if (value === undefined) return new Array<number>(length).fill(fallback);
    if (value.length !== length || value.some((v) => !Number.isInteger(v) || v < 0)) {
      throw unsupportedAttribute(node2d, `attribute '${name}' is [${value.join(', ')}]; expected ${length} non-negative integers`);
    }
    return value;
  };
  const strides = read('strides', 1, 2);
  const pads = read('pads', 0, 4);
  const outputPadding = read('output_padding', 0, 2);
  const out: [number, number] = [0, 0];
  for (let i = 0; i < 2; i++) {
    const stride = strides[i] as number;
    if ((outputPadding[i] as number) >= stride) {
      throw unsupportedAttribute(node2d, `output_padding [${outputPadding.join(', ')}] must be smaller than strides [${strides.join(', ')}]`);
    }
    const size = stride * ((input[i] as number) - 1) + (outputPadding[i] as number) + (kernel[i] as number) - (pads[i] as number) - (pads[i + 2] as number);
    if (size < 1) throw shapeError(node2d, `output size ${size} along spatial axis ${i} is not positive`);
    out[i] = size;
  }
  return out;
}

export const ConvTranspose: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const w = requireInput(node, inputs, 1);
    const rank = spatialRank(node, x.shape.length, 'input X');
    checkWeight(node, x, w);
    if (intsAttr(node, 'output_shape') !== undefined) {
      throw unsupportedAttribute(node, "attribute 'output_shape'; fedgate differentiates ConvTranspose with pads and output_padding (what torch exports)");
    }
    if (stringAttr(node, 'auto_pad', 'NOTSET') !== 'NOTSET') {
      throw unsupportedAttribute(node, `auto_pad '${stringAttr(node, 'auto_pad', 'NOTSET')}'; expected NOTSET with explicit pads`);
    }
    const dilations = intsAttr(node, 'dilations');
    if (dilations !== undefined && dilations.some((d) => d !== 1)) {
      throw unsupportedAttribute(node, `dilations [${dilations.join(', ')}]; fedgate differentiates dilation 1 only`);
    }
    const group = groupOf(node);
    if (!Number.isInteger(group) || group < 1 || (w.shape[0] as number) % group !== 0) {
      throw shapeError(node, `group ${group} does not divide the ${w.shape[0]} input channels of weight ${formatShape(w.shape)}`);
    }
    if (x.shape[1] !== w.shape[0]) {
      throw shapeError(node, `input has ${x.shape[1]} channels, weight ${formatShape(w.shape)} expects ${w.shape[0]}`);
    }
    const outChannels = (w.shape[1] as number) * group;
    checkBias(node, inputs, outChannels);
    const x2 = liftShape(x.shape);
    const w2 = liftShape(w.shape);
    const out = transposedOutput(rank === 1 ? liftTo2d(node) : node, [x2[2] as number, x2[3] as number], [w2[2] as number, w2[3] as number]);
    return [{ elemType: x.elemType, shape: [x.shape[0] as number, outChannels, ...(rank === 1 ? [out[1]] : out)] }];
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [x, w] = call.inputs as [string, string];
    const xShape = call.inputFacts[0]?.shape ?? [];
    const wShape = call.inputFacts[1]?.shape ?? [];
    const yShape = call.outputFacts[0]?.shape ?? [];
    const l = lifted(call.node, xShape.length, ctx.builder);
    // The Conv that maps Y's shape back to X's: same kernel, strides and pads.
    const g = geometryOver(l.node, liftShape(yShape), liftShape(wShape));
    const group = groupOf(call.node);
    const grad2d = l.lift(grad);
    let gradX: string | undefined;
    let gradW: string | undefined;
    if (needs[0]) {
      gradX = l.drop(
        ctx.op('Conv', [grad2d, l.lift(w)], {
          kernel_shape: attr.ints(g.kernel),
          strides: attr.ints(g.strides),
          pads: attr.ints(g.pads),
          group: attr.int(group),
        }),
      );
    }
    if (needs[1]) gradW = l.drop(convWeightGradient(ctx, grad2d, liftShape(yShape), l.lift(x), g, group));
    const hasBias = call.inputs[2] !== undefined && call.inputs[2] !== '';
    const gradB = needs[2] && hasBias ? ctx.sumAxes(grad, spatialSumAxes(xShape.length), false) : undefined;
    return [gradX, gradW, gradB];
  },
};
