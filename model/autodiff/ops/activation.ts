/**
 * Activations PyTorch exports as single ONNX nodes: LeakyRelu, Elu, Selu, Softplus, HardSigmoid,
 * HardSwish, and Gelu (opset 20; torch 1.13 writes its exact form as Div/Erf/Add/Mul and its tanh form
 * as Mul/Tanh, which math.ts and elementwise.ts differentiate node by node).
 * Derivatives follow the PyTorch conventions at kinks (the x > 0 branch takes x = 0's neighbour on the
 * left: leaky_relu'(0) = alpha, elu'(0) = alpha, as torch's `x > 0` masks do).
 */
import type { NodeIR } from '../../onnx/ir.js';
import { floatAttr, requireInput, stringAttr, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { EmitContext, GradContext, OpRule } from '../rule.js';

const sameFacts = (node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] => [requireInput(node, inputs, 0)];

/** Where(x > 0, positive, negative) as one emitted value. */
function byXSign(ctx: GradContext, x: string, positive: string, negative: string): string {
  return ctx.op('Where', [ctx.op('Greater', [x, ctx.scalar(0)]), positive, negative]);
}

export const LeakyRelu: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const alpha = floatAttr(call.node, 'alpha', 0.01);
    return [byXSign(ctx, call.inputs[0] as string, grad, ctx.op('Mul', [grad, ctx.scalar(alpha)]))];
  },
};

export const Elu: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // x <= 0: y = alpha (e^x - 1), so dy/dx = alpha e^x = y + alpha.
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const alpha = floatAttr(call.node, 'alpha', 1);
    const negative = ctx.op('Mul', [grad, ctx.op('Add', [call.outputs[0] as string, ctx.scalar(alpha)])]);
    return [byXSign(ctx, call.inputs[0] as string, grad, negative)];
  },
};

// ONNX Selu defaults, bit-identical to torch.nn.SELU's constants.
const SELU_ALPHA = 1.67326319217681884765625;
const SELU_GAMMA = 1.05070102214813232421875;

export const Selu: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // x > 0: gamma; x <= 0: y = gamma alpha (e^x - 1), dy/dx = y + gamma alpha.
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const alpha = floatAttr(call.node, 'alpha', SELU_ALPHA);
    const gamma = floatAttr(call.node, 'gamma', SELU_GAMMA);
    const positive = ctx.op('Mul', [grad, ctx.scalar(gamma)]);
    const negative = ctx.op('Mul', [grad, ctx.op('Add', [call.outputs[0] as string, ctx.scalar(gamma * alpha)])]);
    return [byXSign(ctx, call.inputs[0] as string, positive, negative)];
  },
};

export const Softplus: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // softplus'(x) = sigmoid(x)
  backward: (call, [grad], _needs, ctx) =>
    grad === undefined ? [] : [ctx.op('Mul', [grad, ctx.op('Sigmoid', [call.inputs[0] as string])])],
};

export const HardSigmoid: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // y = max(0, min(1, alpha x + beta)); dy/dx = alpha strictly inside (0, 1), else 0.
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const alpha = floatAttr(call.node, 'alpha', 0.2);
    const y = call.outputs[0] as string;
    const inside = ctx.op('And', [ctx.op('Greater', [y, ctx.scalar(0)]), ctx.op('Less', [y, ctx.scalar(1)])]);
    return [ctx.op('Where', [inside, ctx.op('Mul', [grad, ctx.scalar(alpha)]), ctx.scalar(0)])];
  },
};

export const HardSwish: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // y = x relu6(x + 3) / 6; dy/dx = 0 for x < -3, 1 for x > 3, (2x + 3) / 6 between (torch's hardswish_backward).
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const middle = ctx.op('Add', [ctx.op('Mul', [x, ctx.scalar(1 / 3)]), ctx.scalar(0.5)]);
    const slope = ctx.op('Where', [
      ctx.op('Less', [x, ctx.scalar(-3)]),
      ctx.scalar(0),
      ctx.op('Where', [ctx.op('Greater', [x, ctx.scalar(3)]), ctx.scalar(1), middle]),
    ]);
    return [ctx.op('Mul', [grad, slope])];
  },
};

const SQRT_HALF = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TANH_CUBIC = 0.044715;

function geluApproximation(node: NodeIR): 'none' | 'tanh' {
  const approximate = stringAttr(node, 'approximate', 'none');
  if (approximate !== 'none' && approximate !== 'tanh') {
    throw unsupportedAttribute(node, `approximate '${approximate}' is not one of 'none', 'tanh'`);
  }
  return approximate;
}

/**
 * Gelu-20 lowered to opset-17 primitives (fedgate's graphs are opset 17):
 * none: 0.5 x (1 + erf(x / sqrt 2)); tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
function emitGelu(node: NodeIR, x: string, ctx: EmitContext): string {
  const b = ctx.builder;
  const s = (v: number): string => b.scalar(v, ctx.floatType);
  const inner =
    geluApproximation(node) === 'none'
      ? b.op('Erf', [b.op('Mul', [x, s(SQRT_HALF)])])
      : b.op('Tanh', [b.op('Mul', [b.op('Add', [x, b.op('Mul', [b.op('Mul', [b.op('Mul', [x, x]), x]), s(TANH_CUBIC)])]), s(SQRT_2_OVER_PI)])]);
  const output = b.fresh(node.outputs[0] ?? 'gelu');
  b.appendNode('Mul', [b.op('Mul', [x, s(0.5)]), b.op('Add', [inner, s(1)])], [output], {});
  return output;
}

export const Gelu: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    geluApproximation(node);
    return sameFacts(node, inputs);
  },
  emit: (node, [x], _facts, ctx) => ({ outputs: [emitGelu(node, x as string, ctx)] }),
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const x = call.inputs[0] as string;
    const s = (v: number): string => ctx.scalar(v);
    let slope: string;
    if (geluApproximation(call.node) === 'none') {
      // Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
      const cdf = ctx.op('Mul', [ctx.op('Add', [ctx.op('Erf', [ctx.op('Mul', [x, s(SQRT_HALF)])]), s(1)]), s(0.5)]);
      const pdf = ctx.op('Mul', [ctx.op('Exp', [ctx.op('Mul', [ctx.op('Mul', [x, x]), s(-0.5)])]), s(INV_SQRT_2PI)]);
      slope = ctx.op('Add', [cdf, ctx.op('Mul', [x, pdf])]);
    } else {
      // t = tanh(u), u = c (x + k x^3): 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2)
      const square = ctx.op('Mul', [x, x]);
      const u = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [ctx.op('Mul', [square, x]), s(TANH_CUBIC)])]), s(SQRT_2_OVER_PI)]);
      const t = ctx.op('Tanh', [u]);
      const du = ctx.op('Mul', [ctx.op('Add', [ctx.op('Mul', [square, s(3 * TANH_CUBIC)]), s(1)]), s(SQRT_2_OVER_PI)]);
      const dt = ctx.op('Mul', [ctx.op('Sub', [s(1), ctx.op('Mul', [t, t])]), du]);
      slope = ctx.op('Mul', [ctx.op('Add', [ctx.op('Add', [t, s(1)]), ctx.op('Mul', [x, dt])]), s(0.5)]);
    }
    return [ctx.op('Mul', [grad, slope])];
  },
};
