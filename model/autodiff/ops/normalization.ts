/**
 * LayerNormalization (opset 17) and InstanceNormalization (which torch 1.13 also uses for GroupNorm:
 * Reshape to [N, groups, -1], InstanceNormalization with unit scale, Reshape back, Mul and Add with the
 * affine parameters). Both normalise with statistics of the example itself, so training and inference
 * compute the same function; the training graph writes the normalisation out in primitives so that the
 * backward pass can reuse x^ and 1/sigma:
 *   x^ = (x - mean) / sqrt(var + eps)  (biased variance over the normalised axes),
 *   dx = invstd * (dx^ - mean(dx^) - x^ * mean(dx^ * x^)), dx^ = dy * scale,
 *   dscale = sum(dy * x^), dbias = sum(dy) over the axes the parameters are broadcast along.
 * PyTorch's decomposed layer norm (ReduceMean/Sub/Pow/Sqrt/Div) needs no rule of its own.
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { floatAttr, formatShape, intAttr, normaliseAxis, requireInput, shapeError, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { EmitContext, EmitResult, OpCall, OpRule } from '../rule.js';

interface Layout {
  /** Axes the statistics are taken over. */
  readonly normalised: readonly number[];
  /** Axes the scale and bias are shared along (their gradients sum over these). */
  readonly shared: readonly number[];
  /** Reshape target that makes scale/bias broadcast against x, or undefined when they already do. */
  readonly parameterShape: readonly number[] | undefined;
}

function layerNormLayout(node: NodeIR, rank: number): Layout {
  const axis = normaliseAxis(node, intAttr(node, 'axis', -1), rank);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
  return { normalised: range(axis, rank), shared: range(0, axis), parameterShape: undefined };
}

function instanceNormLayout(shape: readonly number[]): Layout {
  const spatial = Array.from({ length: shape.length - 2 }, (_, i) => i + 2);
  return { normalised: spatial, shared: [0, ...spatial], parameterShape: [1, shape[1] as number, ...spatial.map(() => 1)] };
}

function layoutOf(node: NodeIR, shape: readonly number[]): Layout {
  return node.opType === 'LayerNormalization' ? layerNormLayout(node, shape.length) : instanceNormLayout(shape);
}

function emitNormalization(node: NodeIR, inputs: readonly string[], facts: readonly (ValueFacts | undefined)[], ctx: EmitContext): EmitResult {
  const b = ctx.builder;
  const output = b.fresh(node.outputs[0] ?? 'normalised');
  const attributes =
    node.opType === 'LayerNormalization'
      ? { axis: attr.int(intAttr(node, 'axis', -1)), epsilon: attr.float(floatAttr(node, 'epsilon', 1e-5)) }
      : { epsilon: attr.float(floatAttr(node, 'epsilon', 1e-5)) };
  if (ctx.mode === 'eval') {
    b.appendNode(node.opType, inputs.filter((name, i) => i < 2 || name !== ''), [output], attributes);
    return { outputs: [output] };
  }
  const [x, scale, bias] = inputs as [string, string, string | undefined];
  const layout = layoutOf(node, facts[0]?.shape ?? []);
  const axes = { axes: attr.ints(layout.normalised), keepdims: attr.int(1) };
  const mean = b.op('ReduceMean', [x], axes, 'norm_mean');
  const centred = b.op('Sub', [x, mean], {}, 'norm_centred');
  const variance = b.op('ReduceMean', [b.op('Mul', [centred, centred])], axes, 'norm_var');
  const epsilon = b.scalar(floatAttr(node, 'epsilon', 1e-5), ctx.floatType);
  const invStd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, epsilon])])], {}, 'norm_invstd');
  const normalised = b.op('Mul', [centred, invStd], {}, 'norm_xhat');
  const shaped = (p: string): string => (layout.parameterShape === undefined ? p : b.op('Reshape', [p, b.int64s(layout.parameterShape)]));
  const scaleB = shaped(scale);
  const scaledX = b.op('Mul', [normalised, scaleB]);
  if (bias === undefined || bias === '') b.appendNode('Identity', [scaledX], [output], {});
  else b.appendNode('Add', [scaledX, shaped(bias)], [output], {});
  return { outputs: [output], saved: { normalised, invStd, scaleB } };
}

function normalizationBackward(call: OpCall, grads: readonly (string | undefined)[], needs: readonly boolean[], ctx: Parameters<NonNullable<OpRule['backward']>>[3]): (string | undefined)[] {
  const [grad] = grads;
  if (grad === undefined) return [];
  const shape = call.inputFacts[0]?.shape ?? [];
  const layout = layoutOf(call.node, shape);
  const { normalised, invStd, scaleB } = call.saved as Record<'normalised' | 'invStd' | 'scaleB', string>;
  const meanOver = (value: string): string =>
    ctx.op('ReduceMean', [value], { axes: attr.ints(layout.normalised), keepdims: attr.int(1) });
  let gradX: string | undefined;
  if (needs[0]) {
    const gradNormalised = ctx.op('Mul', [grad, scaleB]);
    const centred = ctx.op('Sub', [gradNormalised, meanOver(gradNormalised)]);
    const projection = ctx.op('Mul', [normalised, meanOver(ctx.op('Mul', [gradNormalised, normalised]))]);
    gradX = ctx.op('Mul', [invStd, ctx.op('Sub', [centred, projection])]);
  }
  const toParameter = (value: string, index: number): string => {
    const summed = layout.shared.length === 0 ? value : ctx.sumAxes(value, layout.shared, false);
    return layout.parameterShape === undefined ? summed : ctx.reshapeLike(summed, call.inputs[index] as string);
  };
  const gradScale = needs[1] ? toParameter(ctx.op('Mul', [grad, normalised]), 1) : undefined;
  const gradBias = needs[2] ? toParameter(grad, 2) : undefined;
  return [gradX, gradScale, gradBias];
}

export const LayerNormalization: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    if (node.outputs.slice(1).some((o) => o !== '')) {
      throw unsupportedAttribute(node, 'the Mean and InvStdDev outputs are not supported; export the model for inference (only Y used)');
    }
    const { normalised } = layerNormLayout(node, x.shape.length);
    const expected = normalised.map((a) => x.shape[a] as number);
    for (const index of [1, 2]) {
      const p = inputs[index];
      if (p === undefined) continue;
      const tail = expected.slice(expected.length - p.shape.length);
      if (p.shape.length > expected.length || p.shape.some((d, i) => d !== 1 && d !== tail[i])) {
        throw shapeError(node, `input ${index} has shape ${formatShape(p.shape)}; expected it to broadcast over the normalised dims ${formatShape(expected)}`);
      }
    }
    return [{ elemType: x.elemType, shape: x.shape }];
  },
  emit: emitNormalization,
  backward(call, grads, needs, ctx) {
    const result = normalizationBackward(call, grads, needs, ctx);
    // Scale and bias of a lower rank than the normalised dims (broadcast) get their gradients summed back.
    const expectedRank = layerNormLayout(call.node, call.inputFacts[0]?.shape.length ?? 0).normalised.length;
    return result.map((grad, i) => {
      const p = call.inputFacts[i]?.shape;
      if (i === 0 || grad === undefined || p === undefined) return grad;
      const full = (call.inputFacts[0]?.shape ?? []).slice(-expectedRank);
      return p.length === full.length && p.every((d, k) => d === full[k]) ? grad : ctx.reduceTo(grad, full, p);
    });
  },
};

export const InstanceNormalization: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    if (x.shape.length < 3) throw shapeError(node, `input ${formatShape(x.shape)} needs rank >= 3 (N, C, D1, ...)`);
    const channels = x.shape[1] as number;
    for (const index of [1, 2]) {
      const p = requireInput(node, inputs, index);
      if (p.shape.length !== 1 || p.shape[0] !== channels) {
        throw shapeError(node, `input ${index} has shape ${formatShape(p.shape)}; expected [${channels}]`);
      }
    }
    return [{ elemType: x.elemType, shape: x.shape }];
  },
  emit: emitNormalization,
  backward: normalizationBackward,
};
