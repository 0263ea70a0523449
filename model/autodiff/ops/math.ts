/**
 * Unary math (Exp, Log, Sqrt, Abs, Neg, Reciprocal, Erf), Pow with a constant or a differentiable
 * exponent, and the variadic element-wise Max, Min, Sum, Mean (numpy broadcasting over all inputs).
 * Gradients of broadcast operands are summed back to the operand's shape (GradContext.reduceTo).
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { isFloatType } from '../../onnx/ir.js';
import { broadcastShapes, requireInput, shapeError, type SymbolicInt, type ValueFacts } from '../facts.js';
import type { GradContext, OpCall, OpRule } from '../rule.js';

const sameFacts = (node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] => {
  const x = requireInput(node, inputs, 0);
  return [{ elemType: x.elemType, shape: x.shape }];
};

/** A unary rule whose VJP is grad * f'(x, y). */
function unary(slope: (ctx: GradContext, x: string, y: string) => string, combine: 'Mul' | 'Div' = 'Mul'): OpRule {
  return {
    differentiableInputs: [0],
    infer: sameFacts,
    backward: (call, [grad], _needs, ctx) =>
      grad === undefined ? [] : [ctx.op(combine, [grad, slope(ctx, call.inputs[0] as string, call.outputs[0] as string)])],
  };
}

export const Exp = unary((_ctx, _x, y) => y);
export const Log = unary((_ctx, x) => x, 'Div');
// sqrt'(x) = 1 / (2 y)
export const Sqrt = unary((ctx, _x, y) => ctx.op('Add', [y, y]), 'Div');
// |x|' = sign(x) (0 at 0, as torch)
export const Abs = unary((ctx, x) => ctx.op('Sign', [x]));
// (1/x)' = -y^2
export const Reciprocal = unary((ctx, _x, y) => ctx.op('Neg', [ctx.op('Mul', [y, y])]));
// erf'(x) = 2 / sqrt(pi) exp(-x^2)
export const Erf = unary((ctx, x) => ctx.op('Mul', [ctx.op('Exp', [ctx.op('Neg', [ctx.op('Mul', [x, x])])]), ctx.scalar(2 / Math.sqrt(Math.PI))]));

export const Neg: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const value = x.value?.map((v): SymbolicInt | undefined => (typeof v === 'number' ? -v : undefined));
    return value === undefined || value.some((v) => v === undefined)
      ? [{ elemType: x.elemType, shape: x.shape }]
      : [{ elemType: x.elemType, shape: x.shape, value: value as SymbolicInt[] }];
  },
  backward: (_call, [grad], _needs, ctx) => (grad === undefined ? [] : [ctx.op('Neg', [grad])]),
};

const shapeOfInput = (call: OpCall, index: number): readonly number[] => call.inputFacts[index]?.shape ?? [];
const outShape = (call: OpCall): readonly number[] => call.outputFacts[0]?.shape ?? [];

export const Pow: OpRule = {
  differentiableInputs: [0, 1],
  infer(node, inputs) {
    const base = requireInput(node, inputs, 0);
    const exponent = requireInput(node, inputs, 1);
    return [{ elemType: base.elemType, shape: broadcastShapes(node, base.shape, exponent.shape) }];
  },
  // d(a^b)/da = b a^(b-1); d(a^b)/db = a^b ln a (only asked for when the exponent is trainable).
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [base, rawExponent] = call.inputs as [string, string];
    const exponentType = call.inputFacts[1]?.elemType;
    // torch writes e.g. x.pow(2) with a float32 exponent even in a double graph; ONNX Pow allows mixed types.
    const exponent = exponentType === ctx.floatType ? rawExponent : ctx.op('Cast', [rawExponent], { to: attr.int(ctx.floatType) });
    let gradBase: string | undefined;
    if (needs[0]) {
      const slope = ctx.op('Mul', [exponent, ctx.op('Pow', [base, ctx.op('Sub', [exponent, ctx.scalar(1)])])]);
      gradBase = ctx.reduceTo(ctx.op('Mul', [grad, slope]), outShape(call), shapeOfInput(call, 0));
    }
    let gradExponent: string | undefined;
    if (needs[1] && exponentType !== undefined && isFloatType(exponentType)) {
      const slope = ctx.op('Mul', [call.outputs[0] as string, ctx.op('Log', [base])]);
      const reduced = ctx.reduceTo(ctx.op('Mul', [grad, slope]), outShape(call), shapeOfInput(call, 1));
      gradExponent = exponentType === ctx.floatType ? reduced : ctx.op('Cast', [reduced], { to: attr.int(exponentType) });
    }
    return [gradBase, gradExponent];
  },
};

function variadicFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] {
  if (node.inputs.length === 0) throw shapeError(node, 'needs at least one input');
  const first = requireInput(node, inputs, 0);
  let shape = first.shape;
  for (let i = 1; i < node.inputs.length; i++) shape = broadcastShapes(node, shape, requireInput(node, inputs, i).shape);
  return [{ elemType: first.elemType, shape }];
}

export const Sum: OpRule = {
  differentiableInputs: 'all',
  infer: variadicFacts,
  backward: (call, [grad], needs, ctx) =>
    grad === undefined ? [] : call.inputs.map((_, i) => (needs[i] ? ctx.reduceTo(grad, outShape(call), shapeOfInput(call, i)) : undefined)),
};

export const Mean: OpRule = {
  differentiableInputs: 'all',
  infer: variadicFacts,
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const share = ctx.op('Mul', [grad, ctx.scalar(1 / call.inputs.length)]);
    return call.inputs.map((_, i) => (needs[i] ? ctx.reduceTo(share, outShape(call), shapeOfInput(call, i)) : undefined));
  },
};

/**
 * Element-wise Max/Min: each input that attains the extremum gets the gradient, split evenly among tied
 * inputs (torch.maximum's rule for two inputs: half each on a tie).
 */
const extremum: OpRule = {
  differentiableInputs: 'all',
  infer: variadicFacts,
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    if (call.inputs.length === 1) return [grad];
    const masks = call.inputs.map((x) => ctx.op('Cast', [ctx.op('Equal', [x, y])], { to: attr.int(ctx.floatType) }));
    const share = ctx.op('Div', [grad, ctx.accumulate(masks)]);
    return call.inputs.map((_, i) =>
      needs[i] ? ctx.reduceTo(ctx.op('Mul', [share, masks[i] as string]), outShape(call), shapeOfInput(call, i)) : undefined,
    );
  },
};

export const Max = extremum;
export const Min = extremum;
