/**
 * Piecewise-linear activations: Clip (ReLU6 and torch.clamp/hardtanh as torch exports them, bounds as
 * optional inputs 1 and 2), HardSigmoid and HardSwish (MobileNetV3). Their gradients are the slope of the
 * piece the input falls in; at a kink they take PyTorch's choice (hardtanh_backward, hardsigmoid_backward
 * and hardswish_backward: zero at Clip's and HardSigmoid's bounds, the open interval counting as inside).
 */
import { floatAttr, requireInput, type ValueFacts } from '../facts.js';
import type { NodeIR } from '../../onnx/ir.js';
import type { OpRule } from '../rule.js';

const sameFacts = (node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] => [requireInput(node, inputs, 0)];

/** dX = dY where min < x < max (a bound that is absent does not clip). */
export const Clip: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const [, min, max] = call.inputs;
    const conditions: string[] = [];
    if (min !== undefined && min !== '') conditions.push(ctx.op('Greater', [x, min]));
    if (max !== undefined && max !== '') conditions.push(ctx.op('Less', [x, max]));
    if (conditions.length === 0) return [grad];
    const inside = conditions.length === 1 ? (conditions[0] as string) : ctx.op('And', conditions);
    return [ctx.masked(grad, inside)];
  },
};

/** y = max(0, min(1, alpha x + beta)); dX = alpha dY where 0 < y < 1. */
export const HardSigmoid: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    const alpha = floatAttr(call.node, 'alpha', 0.2);
    const inside = ctx.op('And', [ctx.op('Greater', [y, ctx.scalar(0)]), ctx.op('Less', [y, ctx.scalar(1)])]);
    return [ctx.masked(ctx.op('Mul', [grad, ctx.scalar(alpha)]), inside)];
  },
};

/** y = x * max(0, min(1, x / 6 + 1/2)); dy/dx = 0 below -3, x / 3 + 1/2 on [-3, 3], 1 above 3. */
export const HardSwish: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const ramp = ctx.op('Add', [ctx.op('Mul', [x, ctx.scalar(1 / 3)]), ctx.scalar(0.5)]);
    const upper = ctx.op('Where', [ctx.op('Greater', [x, ctx.scalar(3)]), ctx.scalar(1), ramp]);
    const slope = ctx.op('Where', [ctx.op('Less', [x, ctx.scalar(-3)]), ctx.scalar(0), upper]);
    return [ctx.op('Mul', [grad, slope])];
  },
};
