/**
 * Gemm and MatMul. Gradients are themselves Gemm nodes with transA/transB chosen so that no explicit
 * Transpose is materialised (ORT's MLAS packs either orientation), following
 * d(A'B') = dY B'^T (for A) and A'^T dY (for B), with A' = op(A), B' = op(B) as in the ONNX Gemm spec.
 */
import { attr } from '../../graph/builder.js';
import { broadcastShapes, floatAttr, intAttr, requireInput, shapeError, formatShape, type ValueFacts } from '../facts.js';
import type { GradContext, OpRule } from '../rule.js';

function gemm(ctx: GradContext, a: string, b: string, transA: boolean, transB: boolean, alpha: number): string {
  const attributes: Record<string, ReturnType<typeof attr.int>> = {};
  if (transA) attributes['transA'] = attr.int(1);
  if (transB) attributes['transB'] = attr.int(1);
  if (alpha !== 1) attributes['alpha'] = attr.float(alpha);
  return ctx.op('Gemm', [a, b], attributes);
}

export const Gemm: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const a = requireInput(node, inputs, 0);
    const b = requireInput(node, inputs, 1);
    if (a.shape.length !== 2 || b.shape.length !== 2) {
      throw shapeError(node, `A ${formatShape(a.shape)} and B ${formatShape(b.shape)} must both be rank 2`);
    }
    const transA = intAttr(node, 'transA', 0) !== 0;
    const transB = intAttr(node, 'transB', 0) !== 0;
    const [m, kA] = (transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]]) as [number, number];
    const [kB, n] = (transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]]) as [number, number];
    if (kA !== kB) {
      throw shapeError(node, `inner dimensions differ: op(A) is [${m}, ${kA}], op(B) is [${kB}, ${n}]`);
    }
    const c = inputs[2];
    if (c !== undefined) {
      const shape = broadcastShapes(node, [m, n], c.shape);
      if (shape[0] !== m || shape[1] !== n) {
        throw shapeError(node, `C ${formatShape(c.shape)} does not broadcast to the output [${m}, ${n}]`);
      }
    }
    return [{ elemType: a.elemType, shape: [m, n] }];
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const node = call.node;
    const [a, b] = call.inputs as [string, string];
    const transA = intAttr(node, 'transA', 0) !== 0;
    const transB = intAttr(node, 'transB', 0) !== 0;
    const alpha = floatAttr(node, 'alpha', 1);
    const beta = floatAttr(node, 'beta', 1);
    let gradA: string | undefined;
    let gradB: string | undefined;
    let gradC: string | undefined;
    if (needs[0]) {
      gradA = transA ? gemm(ctx, b, grad, transB, true, alpha) : gemm(ctx, grad, b, false, !transB, alpha);
    }
    if (needs[1]) {
      gradB = transB ? gemm(ctx, grad, a, true, transA, alpha) : gemm(ctx, a, grad, !transA, false, alpha);
    }
    if (needs[2] && call.inputs[2] !== undefined && call.inputs[2] !== '') {
      const outShape = call.outputFacts[0]?.shape ?? [];
      const reduced = ctx.reduceTo(grad, outShape, call.inputFacts[2]?.shape ?? []);
      gradC = beta === 1 ? reduced : ctx.op('Mul', [reduced, ctx.scalar(beta)]);
    }
    return [gradA, gradB, gradC];
  },
};

function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

function matmulShape(node: Parameters<OpRule['infer']>[0], a: ValueFacts, b: ValueFacts): number[] {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw shapeError(
      node,
      `operands ${formatShape(a.shape)} and ${formatShape(b.shape)}: fedgate differentiates MatMul of rank >= 2 operands only`,
    );
  }
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw shapeError(node, `inner dimensions differ: ${formatShape(a.shape)} x ${formatShape(b.shape)}`);
  return [...broadcastShapes(node, a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
}

export const MatMul: OpRule = {
  differentiableInputs: [0, 1],
  infer(node, inputs) {
    const a = requireInput(node, inputs, 0);
    const b = requireInput(node, inputs, 1);
    return [{ elemType: a.elemType, shape: matmulShape(node, a, b) }];
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [a, b] = call.inputs as [string, string];
    const aShape = call.inputFacts[0]?.shape ?? [];
    const bShape = call.inputFacts[1]?.shape ?? [];
    const outShape = call.outputFacts[0]?.shape ?? [];
    if (aShape.length === 2 && bShape.length === 2) {
      return [
        needs[0] ? gemm(ctx, grad, b, false, true, 1) : undefined,
        needs[1] ? gemm(ctx, a, grad, true, false, 1) : undefined,
      ];
    }
    const k = aShape[aShape.length - 1] as number;
    const n = bShape[bShape.length - 1] as number;
    let gradA: string | undefined;
    let gradB: string | undefined;
    if (needs[0]) {
      const bT = ctx.op('Transpose', [b], { perm: attr.ints(swapLastTwo(bShape.length)) });
      const full = ctx.op('MatMul', [grad, bT]);
      gradA = ctx.reduceTo(full, [...outShape.slice(0, -1), k], aShape);
    }
    if (needs[1]) {
      if (bShape.length === 2) {
        // Batched activations times a shared weight: fold the batch axes into the rows of one Gemm.
        const rowsA = ctx.op('Reshape', [a, ctx.builder.int64s([-1, k])]);
        const rowsGrad = ctx.op('Reshape', [grad, ctx.builder.int64s([-1, n])]);
        gradB = gemm(ctx, rowsA, rowsGrad, true, false, 1);
      } else {
        const aT = ctx.op('Transpose', [a], { perm: attr.ints(swapLastTwo(aShape.length)) });
        const full = ctx.op('MatMul', [aT, grad]);
        gradB = ctx.reduceTo(full, [...outShape.slice(0, -2), k, n], bShape);
      }
    }
    return [gradA, gradB];
  },
};
