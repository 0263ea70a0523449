/**
 * Comparisons and boolean logic (Equal, Less, Greater, LessOrEqual, GreaterOrEqual, Not, And, Or, Xor).
 * They make masks - PyTorch's key-padding mask `ids == pad`, the -inf fill of attention scores - and carry
 * no gradient (their outputs are piecewise constant), so no input of theirs is differentiable. Known
 * integer contents are propagated (as 0/1) because exporters build Expand targets through them.
 */
import type { NodeIR } from '../../onnx/ir.js';
import { DataType } from '../../onnx/schema.js';
import { broadcastShapes, requireInput, type SymbolicInt, type ValueFacts } from '../facts.js';
import type { OpRule } from '../rule.js';

type Predicate = (a: number, b: number) => boolean;

function elementValues(facts: ValueFacts, length: number): number[] | undefined {
  if (facts.value === undefined || facts.value.some((v) => typeof v !== 'number')) return undefined;
  const value = facts.value as number[];
  return Array.from({ length }, (_, i) => value[value.length === 1 ? 0 : i] as number);
}

function comparison(predicate: Predicate): OpRule {
  return {
    differentiableInputs: [],
    infer(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]) {
      const a = requireInput(node, inputs, 0);
      const b = requireInput(node, inputs, 1);
      const shape = broadcastShapes(node, a.shape, b.shape);
      const length = shape.reduce((n, d) => n * d, 1);
      let value: SymbolicInt[] | undefined;
      if (shape.length <= 1 && length >= 0) {
        const x = elementValues(a, length);
        const y = elementValues(b, length);
        if (x !== undefined && y !== undefined) value = x.map((v, i) => (predicate(v, y[i] as number) ? 1 : 0));
      }
      return [{ elemType: DataType.BOOL, shape, ...(value === undefined ? {} : { value }) }];
    },
  };
}

export const Equal = comparison((a, b) => a === b);
export const Less = comparison((a, b) => a < b);
export const Greater = comparison((a, b) => a > b);
export const LessOrEqual = comparison((a, b) => a <= b);
export const GreaterOrEqual = comparison((a, b) => a >= b);
export const And = comparison((a, b) => a !== 0 && b !== 0);
export const Or = comparison((a, b) => a !== 0 || b !== 0);
export const Xor = comparison((a, b) => (a !== 0) !== (b !== 0));

export const Not: OpRule = {
  differentiableInputs: [],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const value = x.value === undefined ? undefined : elementValues(x, x.value.length)?.map((v) => (v === 0 ? 1 : 0));
    return [{ elemType: DataType.BOOL, shape: x.shape, ...(value === undefined ? {} : { value }) }];
  },
};
