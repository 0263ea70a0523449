/**
 * ReduceSum, ReduceMean and ReduceMax over the axes given as an attribute (ReduceSum before opset 13,
 * the others before 18) or as a constant second input (ReduceSum 13+, all of them from 18); keepdims and
 * noop_with_empty_axes as in the ONNX spec. The training graph is opset 17, so emission writes axes where
 * opset 17 wants them. VJPs: sum -> broadcast dy back; mean -> the same divided by the count; max -> dy to
 * the elements equal to the maximum, split evenly among ties (torch.amax's rule).
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { intAttr, isBatchDim, intsAttr, normaliseAxis, requireInput, shapeError, type ValueFacts } from '../facts.js';
import type { EmitContext, GradContext, OpCall, OpRule } from '../rule.js';

interface Reduction {
  /** Reduced axes, normalised and sorted; empty = the op is an identity (noop_with_empty_axes). */
  readonly axes: readonly number[];
  readonly keepDims: boolean;
}

function reduction(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], rank: number): Reduction {
  let axes = intsAttr(node, 'axes');
  const axesInput = node.inputs[1];
  if (axesInput !== undefined && axesInput !== '') {
    const value = requireInput(node, inputs, 1).value;
    if (value === undefined || value.some((a) => typeof a !== 'number')) {
      throw shapeError(node, `axes '${axesInput}' must be a constant`);
    }
    axes = value as number[];
  }
  const keepDims = intAttr(node, 'keepdims', 1) !== 0;
  if (axes === undefined || axes.length === 0) {
    const noop = intAttr(node, 'noop_with_empty_axes', 0) !== 0;
    return { axes: noop ? [] : Array.from({ length: rank }, (_, i) => i), keepDims };
  }
  const normalised = [...new Set(axes.map((a) => normaliseAxis(node, a, rank)))].sort((a, b) => a - b);
  return { axes: normalised, keepDims };
}

function reduceFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] {
  const x = requireInput(node, inputs, 0);
  const { axes, keepDims } = reduction(node, inputs, x.shape.length);
  if (axes.length === 0) return [{ elemType: x.elemType, shape: x.shape }];
  const reduced = new Set(axes);
  const shape = keepDims ? x.shape.map((d, i) => (reduced.has(i) ? 1 : d)) : x.shape.filter((_, i) => !reduced.has(i));
  return [{ elemType: x.elemType, shape }];
}

function callReduction(call: OpCall): Reduction {
  return reduction(call.node, call.inputFacts, call.inputFacts[0]?.shape.length ?? 0);
}

/** Emits the reduction in opset-17 form (axes input for ReduceSum, attribute for the others). */
function emitReduction(node: NodeIR, inputs: readonly string[], facts: readonly (ValueFacts | undefined)[], ctx: EmitContext): string {
  const b = ctx.builder;
  const output = b.fresh(node.outputs[0] ?? node.opType.toLowerCase());
  const { axes, keepDims } = reduction(node, facts, facts[0]?.shape.length ?? 0);
  const x = inputs[0] as string;
  if (axes.length === 0) b.appendNode('Identity', [x], [output], {});
  else if (node.opType === 'ReduceSum') b.appendNode('ReduceSum', [x, b.int64s(axes)], [output], { keepdims: attr.int(keepDims ? 1 : 0) });
  else b.appendNode(node.opType, [x], [output], { axes: attr.ints(axes), keepdims: attr.int(keepDims ? 1 : 0) });
  return output;
}

/** dy (or y) with the reduced axes restored as size-1 axes, ready to broadcast against x. */
function keptShape(ctx: GradContext, value: string, { axes, keepDims }: Reduction): string {
  return keepDims ? value : ctx.op('Unsqueeze', [value, ctx.builder.int64s(axes)]);
}

function broadcastBack(ctx: GradContext, call: OpCall, grad: string, r: Reduction): string {
  return ctx.op('Expand', [keptShape(ctx, grad, r), ctx.shapeOf(call.inputs[0] as string)]);
}

function reduceRule(backward: (call: OpCall, grad: string, r: Reduction, ctx: GradContext) => string): OpRule {
  return {
    differentiableInputs: [0],
    infer: reduceFacts,
    emit: (node, inputs, facts, ctx) => ({ outputs: [emitReduction(node, inputs, facts, ctx)] }),
    backward(call, [grad], _needs, ctx) {
      if (grad === undefined) return [];
      const r = callReduction(call);
      return [r.axes.length === 0 ? grad : backward(call, grad, r, ctx)];
    },
  };
}

export const ReduceSum = reduceRule((call, grad, r, ctx) => broadcastBack(ctx, call, grad, r));

export const ReduceMean = reduceRule((call, grad, r, ctx) => {
  const shape = call.inputFacts[0]?.shape ?? [];
  const dims = r.axes.map((a) => shape[a] as number);
  let count: string;
  if (dims.some(isBatchDim)) {
    // The batch size is known at run time only: count = size(x) / size(y).
    const sizes = ctx.op('Div', [ctx.op('Size', [call.inputs[0] as string]), ctx.op('Size', [call.outputs[0] as string])]);
    count = ctx.op('Cast', [sizes], { to: attr.int(ctx.floatType) });
  } else {
    count = ctx.scalar(dims.reduce((n, d) => n * d, 1));
  }
  return broadcastBack(ctx, call, ctx.op('Div', [grad, count]), r);
});

export const ReduceMax = reduceRule((call, grad, r, ctx) => {
  const x = call.inputs[0] as string;
  const y = keptShape(ctx, call.outputs[0] as string, r);
  const mask = ctx.op('Cast', [ctx.op('Equal', [x, y])], { to: attr.int(ctx.floatType) });
  const ties = ctx.op('ReduceSum', [mask, ctx.builder.int64s(r.axes)], { keepdims: attr.int(1) });
  return ctx.op('Mul', [mask, ctx.op('Div', [keptShape(ctx, grad, r), ties])]);
});
