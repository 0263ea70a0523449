/**
 * Softmax and LogSoftmax along one axis (opset 13 semantics: `axis` defaults to -1, no 2-D coercion).
 * VJPs: softmax  dx = y * (dy - sum(dy * y))
 *       logsoftmax dx = dy - exp(y) * sum(dy)       (sums along the axis, kept for broadcasting)
 */
import { intAttr, normaliseAxis, requireInput } from '../facts.js';
import type { OpCall, OpRule } from '../rule.js';

function axisOf(call: OpCall): number {
  return normaliseAxis(call.node, intAttr(call.node, 'axis', -1), call.outputFacts[0]?.shape.length ?? 0);
}

export const Softmax: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    normaliseAxis(node, intAttr(node, 'axis', -1), x.shape.length);
    return [{ elemType: x.elemType, shape: x.shape }];
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    const dot = ctx.sumAxes(ctx.op('Mul', [grad, y]), [axisOf(call)], true);
    return [ctx.op('Mul', [y, ctx.op('Sub', [grad, dot])])];
  },
};

export const LogSoftmax: OpRule = {
  differentiableInputs: [0],
  infer: Softmax.infer,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    const total = ctx.sumAxes(grad, [axisOf(call)], true);
    return [ctx.op('Sub', [grad, ctx.op('Mul', [ctx.op('Exp', [y]), total])])];
  },
};

