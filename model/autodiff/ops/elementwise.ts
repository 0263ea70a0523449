/**
 * Element-wise ops with numpy broadcasting (Add, Sub, Mul, Div) and activations (Relu, Sigmoid, Tanh,
 * Identity). Gradients of broadcast operands are summed back to the operand's shape (GradContext.reduceTo).
 */
import { batchMultipleOf, batchValue, broadcastShapes, requireInput, type SymbolicInt, type ValueFacts } from '../facts.js';
import type { OpCall, OpRule } from '../rule.js';
import type { NodeIR } from '../../onnx/ir.js';

type Arithmetic = (a: number, b: number) => number;

/** Arithmetic on a batch multiple k*B and a number (B * heads, S * B, (k*B) / heads); undefined if not one. */
type BatchArithmetic = (multiple: number, other: number, batchFirst: boolean) => number | undefined;

const scaleBatch: BatchArithmetic = (k, n) => (n > 0 ? k * n : undefined);
const divideBatch: BatchArithmetic = (k, n, batchFirst) => (batchFirst && n > 0 && k % n === 0 ? k / n : undefined);

/** Propagates known integer contents through arithmetic on shape values (e.g. C * H * W for a Reshape). */
function combineValues(a: ValueFacts, b: ValueFacts, fn: Arithmetic, length: number, onBatch?: BatchArithmetic): SymbolicInt[] | undefined {
  if (a.value === undefined || b.value === undefined) return undefined;
  const out: SymbolicInt[] = [];
  for (let i = 0; i < length; i++) {
    const x = a.value.length === 1 ? a.value[0] : a.value[i];
    const y = b.value.length === 1 ? b.value[0] : b.value[i];
    if (x === undefined || y === undefined) return undefined;
    if (typeof x === 'number' && typeof y === 'number') {
      out.push(fn(x, y));
      continue;
    }
    if (onBatch === undefined || (typeof x !== 'number' && typeof y !== 'number')) return undefined;
    const multiple = typeof x === 'number' ? onBatch(batchMultipleOf(y) as number, x, false) : onBatch(batchMultipleOf(x) as number, y as number, true);
    if (multiple === undefined) return undefined;
    out.push(batchValue(multiple));
  }
  return out;
}

function binary(fn: Arithmetic, onBatch?: BatchArithmetic): (node: NodeIR, inputs: readonly (ValueFacts | undefined)[]) => ValueFacts[] {
  return (node, inputs) => {
    const a = requireInput(node, inputs, 0);
    const b = requireInput(node, inputs, 1);
    const shape = broadcastShapes(node, a.shape, b.shape);
    const length = shape.reduce((n, d) => n * d, 1);
    const value = shape.length <= 1 && length >= 0 ? combineValues(a, b, fn, length, onBatch) : undefined;
    return [{ elemType: a.elemType, shape, ...(value === undefined ? {} : { value }) }];
  };
}

const shapeOfInput = (call: OpCall, index: number): readonly number[] => call.inputFacts[index]?.shape ?? [];
const outShape = (call: OpCall): readonly number[] => call.outputFacts[0]?.shape ?? [];

export const Add: OpRule = {
  differentiableInputs: [0, 1],
  infer: binary((a, b) => a + b),
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    return [0, 1].map((i) => (needs[i] ? ctx.reduceTo(grad, outShape(call), shapeOfInput(call, i)) : undefined));
  },
};

export const Sub: OpRule = {
  differentiableInputs: [0, 1],
  infer: binary((a, b) => a - b),
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const gradA = needs[0] ? ctx.reduceTo(grad, outShape(call), shapeOfInput(call, 0)) : undefined;
    const gradB = needs[1] ? ctx.op('Neg', [ctx.reduceTo(grad, outShape(call), shapeOfInput(call, 1))]) : undefined;
    return [gradA, gradB];
  },
};

export const Mul: OpRule = {
  differentiableInputs: [0, 1],
  infer: binary((a, b) => a * b, scaleBatch),
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [a, b] = call.inputs as [string, string];
    const gradA = needs[0] ? ctx.reduceTo(ctx.op('Mul', [grad, b]), outShape(call), shapeOfInput(call, 0)) : undefined;
    const gradB = needs[1] ? ctx.reduceTo(ctx.op('Mul', [grad, a]), outShape(call), shapeOfInput(call, 1)) : undefined;
    return [gradA, gradB];
  },
};

export const Div: OpRule = {
  differentiableInputs: [0, 1],
  infer: binary((a, b) => Math.trunc(a / b), divideBatch),
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [, b] = call.inputs as [string, string];
    const y = call.outputs[0] as string;
    const gradA = needs[0] ? ctx.reduceTo(ctx.op('Div', [grad, b]), outShape(call), shapeOfInput(call, 0)) : undefined;
    // d(a/b)/db = -a/b^2 = -y/b
    const gradB = needs[1]
      ? ctx.op('Neg', [ctx.reduceTo(ctx.op('Div', [ctx.op('Mul', [grad, y]), b]), outShape(call), shapeOfInput(call, 1))])
      : undefined;
    return [gradA, gradB];
  },
};

const sameFacts = (node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] => [
  requireInput(node, inputs, 0),
];

export const Identity: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  backward: (_call, [grad]) => [grad],
};

export const Relu: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // relu'(x) = 1 where x > 0, else 0 (0 at the kink, as PyTorch); y = relu(x) > 0 exactly there. (Mul by
  // Sign(y) measured slower in ONNX Runtime than the cast mask.)
  backward: (call, [grad], _needs, ctx) =>
    grad === undefined ? [] : [ctx.masked(grad, ctx.op('Greater', [call.outputs[0] as string, ctx.scalar(0)]))],
};

export const Sigmoid: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // sigma'(x) = y (1 - y)
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    return [ctx.op('Mul', [grad, ctx.op('Mul', [y, ctx.op('Sub', [ctx.scalar(1), y])])])];
  },
};

export const Tanh: OpRule = {
  differentiableInputs: [0],
  infer: sameFacts,
  // tanh'(x) = 1 - y^2
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const y = call.outputs[0] as string;
    return [ctx.op('Mul', [grad, ctx.op('Sub', [ctx.scalar(1), ctx.op('Mul', [y, y])])])];
  },
};
