/**
 * BatchNormalization. Inference (eval graphs, export) normalises with the running statistics. Training
 * normalises with the batch statistics, as ONNX BatchNormalization-15 with training_mode = 1 defines them
 * (biased variance over every axis but the channel axis), and updates running_mean/running_var with
 * `running * momentum + batch * (1 - momentum)`; the new statistics leave the step as updated parameters.
 * The running variance blends in the population batch variance as the ONNX spec says; PyTorch blends the
 * unbiased one (times n / (n - 1), n = values per channel), a difference of 1/(n - 1) relative.
 *
 * A training-mode export (torch.onnx.export(..., training=TrainingMode.TRAINING)) has three outputs:
 * Y and the updated running mean and variance. Training gives outputs 1 and 2 the blended statistics;
 * inference passes the running statistics through (torch leaves them unconsumed).
 *
 * Backward (Ioffe & Szegedy 2015, section 3, with x^ = (x - mu) * invstd):
 *   dB = sum(dy), dscale = sum(dy * x^), dx = invstd * (dx^ - mean(dx^) - x^ * mean(dx^ * x^)),
 *   dx^ = dy * scale; sums and means over the normalised axes.
 */
import { attr } from '../../graph/builder.js';
import { floatAttr, formatShape, requireInput, shapeError, unsupportedAttribute } from '../facts.js';
import type { OpRule } from '../rule.js';

function normalisedAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

export const BatchNormalization: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    if (x.shape.length < 2) throw shapeError(node, `input ${formatShape(x.shape)} needs rank >= 2 (N, C, ...)`);
    if (node.outputs.length > 3) {
      throw unsupportedAttribute(node, `${node.outputs.length} outputs; BatchNormalization has at most three (Y, running_mean, running_var)`);
    }
    const channels = x.shape[1] as number;
    for (let i = 1; i <= 4; i++) {
      const facts = requireInput(node, inputs, i);
      if (facts.shape.length !== 1 || facts.shape[0] !== channels) {
        throw shapeError(node, `input ${i} ('${node.inputs[i] ?? ''}') has shape ${formatShape(facts.shape)}; expected [${channels}]`);
      }
    }
    const statistics = { elemType: x.elemType, shape: [channels] };
    return [{ elemType: x.elemType, shape: x.shape }, statistics, statistics].slice(0, Math.max(1, node.outputs.length));
  },
  emit(node, inputs, facts, ctx) {
    const b = ctx.builder;
    const output = b.fresh(node.outputs[0] ?? 'batchnorm');
    // Names for outputs 1 and 2 (running statistics after the step) when the source node has them.
    const extra = (index: number, value: string): string[] => {
      const name = node.outputs[index];
      if (name === undefined) return [];
      if (name === '') return [''];
      return [b.op('Identity', [value], {}, name)];
    };
    if (ctx.mode === 'eval') {
      // Inference form (no training_mode attribute): the running statistics pass through unchanged.
      b.appendNode('BatchNormalization', inputs, [output], {
        epsilon: attr.float(floatAttr(node, 'epsilon', 1e-5)),
        momentum: attr.float(floatAttr(node, 'momentum', 0.9)),
      });
      return { outputs: [output, ...extra(1, inputs[3] as string), ...extra(2, inputs[4] as string)] };
    }
    const [x, scale, bias, runningMean, runningVar] = inputs as [string, string, string, string, string];
    const shape = facts[0]?.shape ?? [];
    const channels = shape[1] as number;
    const epsilon = floatAttr(node, 'epsilon', 1e-5);
    const momentum = floatAttr(node, 'momentum', 0.9);
    const axes = { axes: attr.ints(normalisedAxes(shape.length)), keepdims: attr.int(1) };
    const statShape = b.int64s([1, channels, ...new Array<number>(shape.length - 2).fill(1)]);
    const channelShape = b.int64s([channels]);
    const mean = b.op('ReduceMean', [x], axes, 'bn_mean');
    const centred = b.op('Sub', [x, mean], {}, 'bn_centred');
    const variance = b.op('ReduceMean', [b.op('Mul', [centred, centred])], axes, 'bn_var');
    const invStd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, b.scalar(epsilon, ctx.floatType)])])], {}, 'bn_invstd');
    const normalised = b.op('Mul', [centred, invStd], {}, 'bn_xhat');
    const scaleB = b.op('Reshape', [scale, statShape]);
    const biasB = b.op('Reshape', [bias, statShape]);
    b.appendNode('Add', [b.op('Mul', [normalised, scaleB]), biasB], [output], {});
    const blend = (running: string, batch: string): string =>
      b.op('Add', [
        b.op('Mul', [running, b.scalar(momentum, ctx.floatType)]),
        b.op('Mul', [b.op('Reshape', [batch, channelShape]), b.scalar(1 - momentum, ctx.floatType)]),
      ]);
    const newMean = blend(runningMean, mean);
    const newVar = blend(runningVar, variance);
    return {
      outputs: [output, ...extra(1, newMean), ...extra(2, newVar)],
      saved: { normalised, invStd, scaleB },
      stateUpdates: [
        { inputIndex: 3, value: newMean },
        { inputIndex: 4, value: newVar },
      ],
    };
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const rank = call.inputFacts[0]?.shape.length ?? 0;
    const axes = normalisedAxes(rank);
    const { normalised, invStd, scaleB } = call.saved as Record<'normalised' | 'invStd' | 'scaleB', string>;
    const meanOver = (value: string): string => ctx.op('ReduceMean', [value], { axes: attr.ints(axes), keepdims: attr.int(1) });
    let gradX: string | undefined;
    if (needs[0]) {
      const gradNormalised = ctx.op('Mul', [grad, scaleB]);
      const centred = ctx.op('Sub', [gradNormalised, meanOver(gradNormalised)]);
      const projection = ctx.op('Mul', [normalised, meanOver(ctx.op('Mul', [gradNormalised, normalised]))]);
      gradX = ctx.op('Mul', [invStd, ctx.op('Sub', [centred, projection])]);
    }
    const gradScale = needs[1] ? ctx.sumAxes(ctx.op('Mul', [grad, normalised]), axes, false) : undefined;
    const gradBias = needs[2] ? ctx.sumAxes(grad, axes, false) : undefined;
    return [gradX, gradScale, gradBias];
  },
};
