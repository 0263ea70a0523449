/**
 * Ops that move elements without changing them: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat.
 * Their gradients move dY back (Reshape to the input's run-time shape, inverse Transpose, Split).
 * Reshape targets computed by exporters' shape plumbing are resolved statically from ValueFacts.value.
 */
import { attr } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import {
  formatShape,
  isBatchDim,
  valueToDim,
  intAttr,
  intsAttr,
  normaliseAxis,
  requireInput,
  shapeError,
  type SymbolicInt,
  type ValueFacts,
} from '../facts.js';
import type { OpRule } from '../rule.js';

/** Product of dims where at most one is a batch dimension: a number, a batch multiple -k, or undefined (B^2). */
function symbolicProduct(dims: readonly number[]): number | undefined {
  let product = 1;
  let batches = 0;
  for (const dim of dims) {
    if (isBatchDim(dim)) batches++;
    product *= Math.abs(dim);
  }
  if (batches === 0) return product;
  return batches === 1 ? -product : undefined;
}

const withValue = (facts: ValueFacts, value: readonly SymbolicInt[] | undefined): ValueFacts =>
  value === undefined ? { elemType: facts.elemType, shape: facts.shape } : { elemType: facts.elemType, shape: facts.shape, value };

const reshapeBack: OpRule['backward'] = (call, [grad], _needs, ctx) =>
  grad === undefined ? [] : [ctx.reshapeLike(grad, call.inputs[0] as string)];

export const Flatten: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const axis = normaliseAxis(node, intAttr(node, 'axis', 1), x.shape.length + 1);
    const outer = symbolicProduct(x.shape.slice(0, axis));
    const inner = symbolicProduct(x.shape.slice(axis));
    if (outer === undefined || inner === undefined || isBatchDim(inner)) {
      throw shapeError(node, `flattening ${formatShape(x.shape)} at axis ${axis} mixes the batch dimension with other dimensions`);
    }
    return [{ elemType: x.elemType, shape: [outer, inner] }];
  },
  backward: reshapeBack,
};

/** Output shape of Reshape(data, target) per the ONNX Reshape spec (0 = copy, -1 = infer). */
function reshapeTarget(node: NodeIR, input: readonly number[], target: readonly SymbolicInt[]): number[] {
  const allowZero = intAttr(node, 'allowzero', 0) !== 0;
  // Batch multiples count with their factor: [S, B, 128] -> [S, 4B, 32] keeps S * 128 * B elements.
  const inputBatches = input.filter(isBatchDim).length;
  const inputSize = input.reduce((n, d) => n * Math.abs(d), 1);
  let inferAt = -1;
  const out = target.map((entry, i) => {
    if (typeof entry !== 'number') return valueToDim(entry);
    if (entry === 0 && !allowZero) {
      const copied = input[i];
      if (copied === undefined) throw shapeError(node, `target dim ${i} copies an input dim that does not exist`);
      return copied;
    }
    if (entry === -1) {
      if (inferAt >= 0) throw shapeError(node, `target [${target.join(', ')}] has more than one -1`);
      inferAt = i;
      return 0;
    }
    return entry;
  });
  const knownBatches = out.filter((d, i) => isBatchDim(d) && i !== inferAt).length;
  const knownSize = out.reduce((n, d, i) => (i === inferAt ? n : n * Math.abs(d)), 1);
  const describe = `input ${formatShape(input)} to target [${target.join(', ')}]`;
  if (inferAt >= 0) {
    const batches = inputBatches - knownBatches;
    if (knownSize === 0 || inputSize % knownSize !== 0 || batches < 0 || batches > 1) {
      throw shapeError(node, `cannot reshape ${describe}`);
    }
    const rest = inputSize / knownSize;
    out[inferAt] = batches === 1 ? -rest : rest;
  } else if (knownBatches !== inputBatches || knownSize !== inputSize) {
    throw shapeError(node, `cannot reshape ${describe}: element counts differ`);
  }
  return out;
}

export const Reshape: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const target = requireInput(node, inputs, 1);
    if (target.value === undefined) {
      throw shapeError(node, `target shape '${node.inputs[1] ?? ''}' is not computable before run time; fedgate needs static shapes apart from the batch dimension`);
    }
    const shape = reshapeTarget(node, x.shape, target.value);
    return [withValue({ elemType: x.elemType, shape }, x.value)];
  },
  backward: reshapeBack,
};

export const Transpose: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const perm = intsAttr(node, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i);
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x.shape.length || sorted.some((p, i) => p !== i)) {
      throw shapeError(node, `perm [${perm.join(', ')}] is not a permutation of the ${x.shape.length} axes of ${formatShape(x.shape)}`);
    }
    return [{ elemType: x.elemType, shape: perm.map((p) => x.shape[p] as number) }];
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const rank = call.inputFacts[0]?.shape.length ?? 0;
    const perm = intsAttr(call.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [ctx.op('Transpose', [grad], { perm: attr.ints(inverse) })];
  },
};

/** Axes from opset-13 style input 1 (Squeeze/Unsqueeze), which must be a known constant. */
function axesInput(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): number[] | undefined {
  if (node.inputs[1] === undefined || node.inputs[1] === '') return undefined;
  const axes = requireInput(node, inputs, 1).value;
  if (axes === undefined || axes.some((a) => typeof a !== 'number')) {
    throw shapeError(node, `axes '${node.inputs[1]}' must be a constant`);
  }
  return axes as number[];
}

export const Squeeze: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const axes = axesInput(node, inputs)?.map((a) => normaliseAxis(node, a, x.shape.length));
    const drop = new Set(axes ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])));
    for (const axis of drop) {
      if (x.shape[axis] !== 1) throw shapeError(node, `axis ${axis} of ${formatShape(x.shape)} is not 1`);
    }
    return [withValue({ elemType: x.elemType, shape: x.shape.filter((_, i) => !drop.has(i)) }, x.value)];
  },
  backward: reshapeBack,
};

export const Unsqueeze: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const axes = axesInput(node, inputs);
    if (axes === undefined) throw shapeError(node, 'axes input is required (opset 13)');
    const rank = x.shape.length + axes.length;
    const inserted = new Set(axes.map((a) => normaliseAxis(node, a, rank)));
    const shape: number[] = [];
    let source = 0;
    for (let i = 0; i < rank; i++) shape.push(inserted.has(i) ? 1 : (x.shape[source++] as number));
    return [withValue({ elemType: x.elemType, shape }, x.value)];
  },
  backward: reshapeBack,
};

export const Concat: OpRule = {
  differentiableInputs: 'all',
  infer(node, inputs) {
    const parts = node.inputs.map((_, i) => requireInput(node, inputs, i));
    const first = parts[0];
    if (first === undefined) throw shapeError(node, 'Concat needs at least one input');
    const axis = normaliseAxis(node, intAttr(node, 'axis', 0), first.shape.length);
    let total = 0;
    for (const part of parts) {
      const dim = part.shape[axis] as number;
      if (isBatchDim(dim)) throw shapeError(node, `concatenating along the batch axis ${axis} is not supported`);
      total += dim;
      part.shape.forEach((d, i) => {
        if (i !== axis && d !== first.shape[i]) {
          throw shapeError(node, `input shapes ${formatShape(first.shape)} and ${formatShape(part.shape)} differ off axis ${axis}`);
        }
      });
    }
    const shape = first.shape.map((d, i) => (i === axis ? total : d));
    const values = parts.every((p) => p.value !== undefined) && shape.length === 1 ? parts.flatMap((p) => p.value ?? []) : undefined;
    return [withValue({ elemType: first.elemType, shape }, values)];
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const axis = normaliseAxis(call.node, intAttr(call.node, 'axis', 0), call.outputFacts[0]?.shape.length ?? 0);
    const sizes = call.inputFacts.map((f) => f?.shape[axis] ?? 0);
    const pieces = ctx.builder.node('Split', [grad, ctx.builder.int64s(sizes)], {
      outputs: sizes.length,
      attributes: { axis: attr.int(axis) },
      base: 'grad',
    });
    return pieces.map((piece, i) => (needs[i] ? piece : undefined));
  },
};

