/**
 * Indexing ops: Gather (embedding tables, and shape plumbing on known integer values), GatherElements
 * and Where. Gather and GatherElements are differentiable with respect to their data: the VJP adds each
 * dY row into the row it was read from (ScatterND / ScatterElements with reduction 'add', opset 16), so
 * an id that occurs several times in a batch accumulates all its gradients. Where passes dY to the branch
 * each element was taken from.
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { DataType } from '../../onnx/schema.js';
import { makeTensor } from '../../onnx/tensor.js';
import { broadcastShapes, formatShape, intAttr, normaliseAxis, requireInput, shapeError, type SymbolicInt, type ValueFacts } from '../facts.js';
import type { GradContext, OpCall, OpRule } from '../rule.js';

/** Zeros of the run-time shape `shape` (an emitted int64 tensor), in the gradient's float type. */
function zerosOfShape(ctx: GradContext, shape: string): string {
  return ctx.op('ConstantOfShape', [shape], { value: attr.tensor(makeTensor('zero', ctx.floatType, [1], [0])) });
}

/** Indices with negative entries (counting from the end, as Gather allows) made non-negative. */
function nonNegative(ctx: GradContext, indices: string, dim: string): string {
  const zero = ctx.builder.constant(DataType.INT64, [], [0]);
  return ctx.op('Where', [ctx.op('Less', [indices, zero]), ctx.op('Add', [indices, dim]), indices]);
}

export const Gather: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const data = requireInput(node, inputs, 0);
    const indices = requireInput(node, inputs, 1);
    const axis = normaliseAxis(node, intAttr(node, 'axis', 0), data.shape.length);
    const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    let value: SymbolicInt[] | undefined;
    if (data.value !== undefined && indices.value !== undefined && data.shape.length === 1) {
      const length = data.shape[0] as number;
      value = [];
      for (const index of indices.value) {
        if (typeof index !== 'number' || index < -length || index >= length) {
          throw shapeError(node, `index ${index} out of range for a tensor of length ${length}`);
        }
        value.push(data.value[index < 0 ? index + length : index] as SymbolicInt);
      }
    }
    return [{ elemType: data.elemType, shape, ...(value === undefined ? {} : { value }) }];
  },
  /*
   * dData = zeros(data) with dY scattered into axis `axis`. ScatterND writes along the leading axes, so
   * the gathered axis is moved to the front: data' = data with `axis` first, dY' = dY with the index axes
   * first; ScatterND(zeros(data'), indices[..., None], dY', 'add'), then moved back.
   */
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const data = call.inputs[0] as string;
    const dataRank = call.inputFacts[0]?.shape.length ?? 0;
    const indexRank = call.inputFacts[1]?.shape.length ?? 0;
    const axis = normaliseAxis(call.node, intAttr(call.node, 'axis', 0), dataRank);
    const dataShape = ctx.shapeOf(data);
    const dim = ctx.op('Gather', [dataShape, ctx.builder.constant(DataType.INT64, [], [axis])], { axis: attr.int(0) });
    const indices = ctx.op('Unsqueeze', [nonNegative(ctx, call.inputs[1] as string, dim), ctx.builder.int64s([-1])]);
    if (axis === 0) return [ctx.op('ScatterND', [zerosOfShape(ctx, dataShape), indices, grad], { reduction: attr.string('add') })];
    // dataPerm puts `axis` first; gradPerm puts the index axes (axis .. axis + indexRank - 1 of dY) first.
    const rest = Array.from({ length: dataRank }, (_, i) => i).filter((i) => i !== axis);
    const dataPerm = [axis, ...rest];
    const gradPerm = [
      ...Array.from({ length: indexRank }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: dataRank - axis - 1 }, (_, i) => axis + indexRank + i),
    ];
    const permutedShape = ctx.op('Gather', [dataShape, ctx.builder.int64s(dataPerm)], { axis: attr.int(0) });
    const movedGrad = ctx.op('Transpose', [grad], { perm: attr.ints(gradPerm) });
    const scattered = ctx.op('ScatterND', [zerosOfShape(ctx, permutedShape), indices, movedGrad], { reduction: attr.string('add') });
    const inverse = new Array<number>(dataRank);
    dataPerm.forEach((p, i) => (inverse[p] = i));
    return [ctx.op('Transpose', [scattered], { perm: attr.ints(inverse) })];
  },
};

export const GatherElements: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const data = requireInput(node, inputs, 0);
    const indices = requireInput(node, inputs, 1);
    normaliseAxis(node, intAttr(node, 'axis', 0), data.shape.length);
    if (indices.shape.length !== data.shape.length) {
      throw shapeError(node, `indices ${formatShape(indices.shape)} and data ${formatShape(data.shape)} must have the same rank`);
    }
    return [{ elemType: data.elemType, shape: indices.shape }];
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const data = call.inputs[0] as string;
    const axis = normaliseAxis(call.node, intAttr(call.node, 'axis', 0), call.inputFacts[0]?.shape.length ?? 0);
    const dataShape = ctx.shapeOf(data);
    const dim = ctx.op('Gather', [dataShape, ctx.builder.constant(DataType.INT64, [], [axis])], { axis: attr.int(0) });
    const indices = nonNegative(ctx, call.inputs[1] as string, dim);
    return [
      ctx.op('ScatterElements', [zerosOfShape(ctx, dataShape), indices, grad], { axis: attr.int(axis), reduction: attr.string('add') }),
    ];
  },
};

function whereFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[] {
  const condition = requireInput(node, inputs, 0);
  const x = requireInput(node, inputs, 1);
  const y = requireInput(node, inputs, 2);
  const shape = broadcastShapes(node, broadcastShapes(node, condition.shape, x.shape), y.shape);
  let value: SymbolicInt[] | undefined;
  if (shape.length <= 1 && condition.value !== undefined && x.value !== undefined && y.value !== undefined) {
    const length = shape[0] ?? 1;
    const at = (v: readonly SymbolicInt[], i: number): SymbolicInt => v[v.length === 1 ? 0 : i] as SymbolicInt;
    value = Array.from({ length }, (_, i) => (at(condition.value as SymbolicInt[], i) !== 0 ? at(x.value as SymbolicInt[], i) : at(y.value as SymbolicInt[], i)));
  }
  return [{ elemType: x.elemType, shape, ...(value === undefined ? {} : { value }) }];
}

export const Where: OpRule = {
  differentiableInputs: [1, 2],
  infer: whereFacts,
  backward(call: OpCall, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const condition = call.inputs[0] as string;
    const out = call.outputFacts[0]?.shape ?? [];
    const zero = ctx.scalar(0);
    const branch = (index: number): string | undefined => {
      if (!needs[index]) return undefined;
      const picked = index === 1 ? ctx.op('Where', [condition, grad, zero]) : ctx.op('Where', [condition, zero, grad]);
      return ctx.reduceTo(picked, out, call.inputFacts[index]?.shape ?? []);
    };
    return [undefined, branch(1), branch(2)];
  },
};
