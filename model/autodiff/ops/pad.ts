/**
 * Pad (opset 13..17: data, pads, optional constant_value; modes constant, reflect, edge), with a
 * gradient for the data. torch exports nn.ZeroPad2d / ConstantPad / F.pad as mode constant,
 * ReflectionPad as reflect and ReplicationPad as edge. The pads must be known statically (a constant,
 * or plumbing whose values the facts track), like every shape in fedgate's graphs.
 *
 * Gradient, one padded axis at a time (size L, pads b at the start and e at the end):
 * - constant: the centre [b, b + L) of dY (negative pads crop in the forward, so zeros come back);
 * - reflect:  Y[j] = X[b - j] for j < b and Y[b + L + j] = X[L - 2 - j], so the start part reversed adds
 *             to X[1 .. b] and the end part reversed to X[L - 1 - e .. L - 2];
 * - edge:     Y[j] = X[0] for j < b and X[L - 1] past the end: those parts' sums add to the two ends.
 */
import { attr } from '../../graph/builder.js';
import { BATCH, formatShape, requireInput, shapeError, stringAttr, unsupportedAttribute, type ValueFacts } from '../facts.js';
import type { NodeIR } from '../../onnx/ir.js';
import { DataType } from '../../onnx/schema.js';
import type { GradContext, OpRule } from '../rule.js';

type PadMode = 'constant' | 'reflect' | 'edge';

function padMode(node: NodeIR): PadMode {
  const mode = stringAttr(node, 'mode', 'constant');
  if (mode === 'constant' || mode === 'reflect' || mode === 'edge') return mode;
  throw unsupportedAttribute(node, `mode '${mode}'; fedgate differentiates constant, reflect and edge`);
}

/** The static pads [b_0, ..., b_{r-1}, e_0, ..., e_{r-1}]. */
function staticPads(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], rank: number): number[] {
  if (node.inputs[3] !== undefined && node.inputs[3] !== '') {
    throw unsupportedAttribute(node, "input 'axes' (opset 18); expected pads for every axis (opset 13..17)");
  }
  const pads = requireInput(node, inputs, 1);
  if (pads.value === undefined || pads.value.some((p) => p === 'batch')) {
    throw shapeError(node, `pads '${node.inputs[1] ?? ''}' are not known before run time; fedgate needs static pads`);
  }
  if (pads.value.length !== 2 * rank) throw shapeError(node, `${pads.value.length} pads for rank ${rank}; expected ${2 * rank}`);
  return pads.value as number[];
}

export const Pad: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const rank = x.shape.length;
    const pads = staticPads(node, inputs, rank);
    const mode = padMode(node);
    const shape = x.shape.map((dim, axis) => {
      const begin = pads[axis] as number;
      const end = pads[axis + rank] as number;
      if (begin === 0 && end === 0) return dim;
      if (dim === BATCH) throw shapeError(node, `pads the batch axis of ${formatShape(x.shape)}`);
      if (mode !== 'constant' && (begin < 0 || end < 0)) throw shapeError(node, `negative pads [${pads.join(', ')}] in mode ${mode}`);
      if (mode === 'reflect' && (begin >= dim || end >= dim)) {
        throw shapeError(node, `reflect pads [${pads.join(', ')}] reach past the ${dim} values of axis ${axis}`);
      }
      const size = dim + begin + end;
      if (size < 0) throw shapeError(node, `pads [${pads.join(', ')}] remove more than the ${dim} values of axis ${axis}`);
      return size;
    });
    return [{ elemType: x.elemType, shape }];
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const shape = call.inputFacts[0]?.shape ?? [];
    const rank = shape.length;
    const pads = staticPads(call.node, call.inputFacts, rank);
    const mode = padMode(call.node);
    let g = grad;
    for (let axis = 0; axis < rank; axis++) {
      const begin = pads[axis] as number;
      const end = pads[axis + rank] as number;
      if (begin === 0 && end === 0) continue;
      g = padAxisGradient(ctx, g, axis, rank, shape[axis] as number, begin, end, mode);
    }
    return [g];
  },
};

/** Gradient through the padding of one axis (the other axes keep their current extent). */
function padAxisGradient(ctx: GradContext, grad: string, axis: number, rank: number, size: number, begin: number, end: number, mode: PadMode): string {
  const b = ctx.builder;
  const slice = (from: number, to: number): string => ctx.op('Slice', [grad, b.int64s([from]), b.int64s([to]), b.int64s([axis])]);
  const zeroPad = (value: string, before: number, after: number): string => {
    if (before === 0 && after === 0) return value;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[axis] = before;
    pads[axis + rank] = after;
    return ctx.op('Pad', [value, b.int64s(pads)]);
  };
  const reversed = (value: string, length: number): string =>
    ctx.op('Gather', [value, b.constant(DataType.INT64, [length], Array.from({ length }, (_, i) => length - 1 - i))], { axis: attr.int(axis) });
  if (mode === 'constant') {
    // Kept region of the output, then zeros for what a negative pad cropped.
    const start = Math.max(begin, 0);
    const kept = size + Math.min(begin, 0) + Math.min(end, 0);
    return zeroPad(slice(start, start + kept), Math.max(-begin, 0), Math.max(-end, 0));
  }
  const terms = [slice(begin, begin + size)];
  if (mode === 'reflect') {
    if (begin > 0) terms.push(zeroPad(reversed(slice(0, begin), begin), 1, size - 1 - begin));
    if (end > 0) terms.push(zeroPad(reversed(slice(begin + size, begin + size + end), end), size - 1 - end, 1));
  } else {
    const summed = (from: number, to: number): string => ctx.sumAxes(slice(from, to), [axis], true);
    if (begin > 0) terms.push(zeroPad(summed(0, begin), 0, size - 1));
    if (end > 0) terms.push(zeroPad(summed(begin + size, begin + size + end), size - 1, 0));
  }
  return ctx.accumulate(terms);
}
