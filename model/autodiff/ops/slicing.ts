/**
 * Ops that select or repeat parts of a tensor: Slice, Split, Expand, Tile, Trilu. Their parameters (starts,
 * ends, axes, steps, split sizes, target shapes, repeats) must be known before run time; exporters' shape
 * plumbing usually makes them so (facts.ts). VJPs put dY back where the forward took it from:
 * Slice -> zero padding (strided slices interleave zeros first), Split -> Concat, Expand -> reduceTo,
 * Tile -> Reshape to [repeats, dim] pairs and ReduceSum over the repeats, Trilu -> the same triangle of dY.
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { makeTensor } from '../../onnx/tensor.js';
import {
  broadcastShapes,
  isBatchDim,
  valueToDim,
  formatShape,
  intAttr,
  intsAttr,
  normaliseAxis,
  requireInput,
  shapeError,
  type SymbolicInt,
  type ValueFacts,
} from '../facts.js';
import type { GradContext, OpRule } from '../rule.js';

/** Known integer contents of input `index`, or an error naming it. */
function constantInts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], index: number, what: string): number[] {
  const value = requireInput(node, inputs, index).value;
  if (value === undefined || value.some((v) => typeof v !== 'number')) {
    throw shapeError(node, `${what} '${node.inputs[index] ?? ''}' is not computable before run time; fedgate needs it constant`);
  }
  return value as number[];
}

const optional = (node: NodeIR, index: number): boolean => node.inputs[index] !== undefined && node.inputs[index] !== '';

// ------------------------------------------------------------------------------------------------ Slice

interface AxisSlice {
  readonly axis: number;
  /** First index taken (already clamped) and the step; count = how many elements are taken. */
  readonly start: number;
  readonly step: number;
  readonly count: number;
}

/** Per-axis slices with the ONNX Slice-13 clamping rules (negative indices count from the end). */
function slices(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): AxisSlice[] {
  const data = requireInput(node, inputs, 0);
  const rank = data.shape.length;
  const starts = constantInts(node, inputs, 1, 'starts');
  const ends = constantInts(node, inputs, 2, 'ends');
  const axes = optional(node, 3) ? constantInts(node, inputs, 3, 'axes') : starts.map((_, i) => i);
  const steps = optional(node, 4) ? constantInts(node, inputs, 4, 'steps') : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    throw shapeError(node, `starts, ends, axes and steps have different lengths (${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  return starts.map((rawStart, i) => {
    const axis = normaliseAxis(node, axes[i] as number, rank);
    const dim = data.shape[axis] as number;
    const step = steps[i] as number;
    if (step === 0) throw shapeError(node, `step 0 on axis ${axis}`);
    let start = rawStart;
    let end = ends[i] as number;
    if (isBatchDim(dim)) {
      // Slicing the batch axis is accepted only when it keeps every example.
      const whole = step === 1 && (start === 0 || start <= -Number.MAX_SAFE_INTEGER) && end >= 2 ** 31 - 1;
      if (!whole) throw shapeError(node, `slicing the batch axis ${axis} (start ${start}, end ${end}, step ${step}) is not supported`);
      return { axis, start: 0, step: 1, count: dim };
    }
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
      start = Math.min(Math.max(start, 0), dim);
      end = Math.min(Math.max(end, 0), dim);
    } else {
      start = Math.min(Math.max(start, 0), dim - 1);
      end = Math.min(Math.max(end, -1), dim - 1);
    }
    const count = Math.max(0, Math.ceil((end - start) / step));
    return { axis, start, step, count };
  });
}

export const Slice: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const data = requireInput(node, inputs, 0);
    const shape = [...data.shape];
    const parts = slices(node, inputs);
    for (const s of parts) shape[s.axis] = s.count;
    let value: SymbolicInt[] | undefined;
    if (data.value !== undefined && data.shape.length === 1) {
      const s = parts[0];
      value = s === undefined ? [...data.value] : Array.from({ length: s.count }, (_, i) => data.value?.[s.start + i * s.step] as SymbolicInt);
    }
    return [{ elemType: data.elemType, shape, ...(value === undefined ? {} : { value }) }];
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const inShape = call.inputFacts[0]?.shape ?? [];
    const parts = slices(call.node, call.inputFacts);
    if (parts.some((s) => s.count === 0)) {
      // An empty slice: nothing was read, the whole gradient is zero.
      const zeros = makeTensor('zero', ctx.floatType, [1], [0]);
      return [ctx.op('ConstantOfShape', [ctx.shapeOf(call.inputs[0] as string)], { value: attr.tensor(zeros) })];
    }
    let current = grad;
    let currentShape = [...(call.outputFacts[0]?.shape ?? [])];
    for (const s of parts) {
      if (isBatchDim(s.count)) continue;
      ({ value: current, shape: currentShape } = unslice(ctx, current, currentShape, s, inShape[s.axis] as number));
    }
    return [current];
  },
};

/** Pads with zeros along one axis: `before` and `after` elements. */
function padAxis(ctx: GradContext, value: string, rank: number, axis: number, before: number, after: number): string {
  if (before === 0 && after === 0) return value;
  const pads = new Array<number>(2 * rank).fill(0);
  pads[axis] = before;
  pads[rank + axis] = after;
  return ctx.op('Pad', [value, ctx.builder.int64s(pads)]);
}

/** Adjoint of one axis of a Slice: scatters the `count` gradient rows back to their `dim` positions. */
function unslice(ctx: GradContext, grad: string, shape: number[], s: AxisSlice, dim: number): { value: string; shape: number[] } {
  const rank = shape.length;
  const result = [...shape];
  result[s.axis] = dim;
  let value = grad;
  let first = s.start;
  let step = s.step;
  if (step < 0) {
    // Reverse to ascending index order; the lowest index taken is start + (count - 1) * step.
    value = ctx.op('Slice', [value, ctx.builder.int64s([-1]), ctx.builder.int64s([-(2 ** 62)]), ctx.builder.int64s([s.axis]), ctx.builder.int64s([-1])]);
    first = s.start + (s.count - 1) * step;
    step = -step;
  }
  let span = s.count;
  if (step > 1) {
    // Interleave step - 1 zeros after each row: [.., count, ..] -> [.., count, step, ..] -> [.., count * step, ..].
    const withAxis = ctx.op('Unsqueeze', [value, ctx.builder.int64s([s.axis + 1])]);
    const padded = padAxis(ctx, withAxis, rank + 1, s.axis + 1, 0, step - 1);
    const merged = [...shape];
    merged[s.axis] = s.count * step;
    value = ctx.op('Reshape', [padded, ctx.shapeConstant(merged)]);
    span = s.count * step;
  }
  const after = dim - first - span;
  if (after < 0) value = ctx.op('Slice', [value, ctx.builder.int64s([0]), ctx.builder.int64s([dim - first]), ctx.builder.int64s([s.axis])]);
  return { value: padAxis(ctx, value, rank, s.axis, first, Math.max(0, after)), shape: result };
}

// ------------------------------------------------------------------------------------------------ Split

function splitSizes(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): { axis: number; sizes: number[] } {
  const x = requireInput(node, inputs, 0);
  const axis = normaliseAxis(node, intAttr(node, 'axis', 0), x.shape.length);
  const dim = x.shape[axis] as number;
  if (isBatchDim(dim)) throw shapeError(node, `splitting the batch axis ${axis} is not supported`);
  const outputs = node.outputs.length;
  let sizes = optional(node, 1) ? constantInts(node, inputs, 1, 'split') : intsAttr(node, 'split');
  if (sizes === undefined) {
    // Equal parts (opset 13) or num_outputs parts with a smaller last one (opset 18).
    const parts = intAttr(node, 'num_outputs', outputs);
    const size = Math.ceil(dim / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(size, dim - i * size)));
  }
  if (sizes.length !== outputs || sizes.reduce((n, d) => n + d, 0) !== dim) {
    throw shapeError(node, `split sizes [${sizes.join(', ')}] do not cut axis ${axis} of ${formatShape(x.shape)} into ${outputs} outputs`);
  }
  return { axis, sizes: [...sizes] };
}

export const Split: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const { axis, sizes } = splitSizes(node, inputs);
    return sizes.map((size) => ({ elemType: x.elemType, shape: x.shape.map((d, i) => (i === axis ? size : d)) }));
  },
  emit(node, inputs, facts, ctx) {
    const { axis, sizes } = splitSizes(node, facts);
    const outputs = node.outputs.map((o) => ctx.builder.fresh(o === '' ? 'split' : o));
    ctx.builder.appendNode('Split', [inputs[0] as string, ctx.builder.int64s(sizes)], outputs, { axis: attr.int(axis) });
    return { outputs };
  },
  backward(call, grads, _needs, ctx) {
    if (grads.every((g) => g === undefined)) return [];
    const { axis, sizes } = splitSizes(call.node, call.inputFacts);
    const zeros = makeTensor('zero', ctx.floatType, [1], [0]);
    const pieces = grads.map(
      (grad, i) => grad ?? ctx.op('ConstantOfShape', [ctx.shapeOf(call.outputs[i] as string)], { value: attr.tensor(zeros) }),
    );
    return [sizes.length === 1 ? pieces[0] : ctx.op('Concat', pieces as string[], { axis: attr.int(axis) })];
  },
};

// ----------------------------------------------------------------------------------------------- Expand

export const Expand: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const target = requireInput(node, inputs, 1).value;
    if (target === undefined) throw shapeError(node, `shape '${node.inputs[1] ?? ''}' is not computable before run time`);
    const shape = broadcastShapes(node, x.shape, target.map(valueToDim));
    const value = x.value !== undefined && shape.length <= 1 ? Array.from({ length: shape[0] ?? 1 }, (_, i) => x.value?.[x.value.length === 1 ? 0 : i] as SymbolicInt) : undefined;
    return [{ elemType: x.elemType, shape, ...(value === undefined ? {} : { value }) }];
  },
  backward: (call, [grad], _needs, ctx) =>
    grad === undefined ? [] : [ctx.reduceTo(grad, call.outputFacts[0]?.shape ?? [], call.inputFacts[0]?.shape ?? [])],
};

// ------------------------------------------------------------------------------------------------- Tile

function repeatsOf(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): number[] {
  const x = requireInput(node, inputs, 0);
  const repeats = constantInts(node, inputs, 1, 'repeats');
  if (repeats.length !== x.shape.length) {
    throw shapeError(node, `repeats [${repeats.join(', ')}] has ${repeats.length} entries for input ${formatShape(x.shape)}`);
  }
  x.shape.forEach((d, i) => {
    if (isBatchDim(d) && repeats[i] !== 1) throw shapeError(node, `repeating the batch axis ${i} is not supported`);
  });
  return repeats;
}

export const Tile: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const repeats = repeatsOf(node, inputs);
    return [{ elemType: x.elemType, shape: x.shape.map((d, i) => (isBatchDim(d) ? d : d * (repeats[i] as number))) }];
  },
  // Output axis i holds repeats[i] copies of dim[i] one after another: view it as [repeats, dim] and sum the repeats.
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const shape = call.inputFacts[0]?.shape ?? [];
    const repeats = repeatsOf(call.node, call.inputFacts);
    if (repeats.every((r) => r === 1)) return [grad];
    const pairs = shape.flatMap((d, i) => [repeats[i] as number, d]);
    const split = ctx.op('Reshape', [grad, ctx.shapeConstant(pairs)]);
    return [ctx.sumAxes(split, shape.map((_, i) => 2 * i), false)];
  },
};

// ------------------------------------------------------------------------------------------------ Trilu

export const Trilu: OpRule = {
  // torch.triu / torch.tril, e.g. a causal attention mask built inside forward(); k may be computed at run time.
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    if (x.shape.length < 2) throw shapeError(node, `input ${formatShape(x.shape)} needs rank >= 2`);
    return [{ elemType: x.elemType, shape: x.shape }];
  },
  // The op keeps one triangle and zeroes the rest: a fixed 0/1 mask, so dX is the same triangle of dY.
  backward: (call, [grad], _needs, ctx) =>
    grad === undefined ? [] : [ctx.op('Trilu', [grad, ...call.inputs.slice(1)], call.node.attributes)],
};
