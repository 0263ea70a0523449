/**
 * Slice (opset 13), here for its part in shape plumbing: torch exports F.pad's pads as
 * ConstantOfShape -> Concat -> Reshape -> Slice(step -1) -> Transpose -> Reshape, and the pads must be
 * known statically for the padded shape. Its shape follows the ONNX spec's clamping rules for any
 * axes/steps, the batch axis included only when taken whole; known integer contents are sliced too.
 * No gradient rule yet: a Slice on a path from a trainable parameter is reported by name.
 */
import {
  BATCH,
  formatShape,
  normaliseAxis,
  requireInput,
  shapeError,
  type SymbolicInt,
  type ValueFacts,
} from '../facts.js';
import type { NodeIR } from '../../onnx/ir.js';
import type { OpRule } from '../rule.js';

/** Row-major strides of `shape`. */
function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = (strides[i + 1] as number) * (shape[i + 1] as number);
  return strides;
}

/** Contents of a tensor whose element at multi-index idx is values[offset(idx)], gathered in row-major order. */
export function gatherValues(
  values: readonly SymbolicInt[],
  inputShape: readonly number[],
  outputShape: readonly number[],
  sourceIndex: (outputIndex: readonly number[]) => readonly number[],
): SymbolicInt[] {
  const inputStrides = stridesOf(inputShape);
  const count = outputShape.reduce((n, d) => n * d, 1);
  const out: SymbolicInt[] = [];
  const index = new Array<number>(outputShape.length).fill(0);
  for (let k = 0; k < count; k++) {
    const source = sourceIndex(index);
    out.push(values[source.reduce((offset, i, axis) => offset + i * (inputStrides[axis] as number), 0)] as SymbolicInt);
    for (let axis = outputShape.length - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] as number) + 1;
      if ((index[axis] as number) < (outputShape[axis] as number)) break;
      index[axis] = 0;
    }
  }
  return out;
}

function knownInts(node: NodeIR, facts: ValueFacts | undefined, what: string): number[] | undefined {
  if (facts === undefined) return undefined;
  if (facts.value === undefined || facts.value.some((v) => v === 'batch')) {
    throw shapeError(node, `${what} '${node.inputs[node.inputs.indexOf(what)] ?? what}' is not known before run time; fedgate needs static slice bounds`);
  }
  return facts.value as number[];
}

export const Slice: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const data = requireInput(node, inputs, 0);
    const rank = data.shape.length;
    const starts = knownInts(node, requireInput(node, inputs, 1), 'starts') as number[];
    const ends = knownInts(node, requireInput(node, inputs, 2), 'ends') as number[];
    const axes = (knownInts(node, inputs[3], 'axes') ?? starts.map((_, i) => i)).map((a) => normaliseAxis(node, a, rank));
    const steps = knownInts(node, inputs[4], 'steps') ?? starts.map(() => 1);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
      throw shapeError(node, `starts, ends, axes and steps differ in length (${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
    }
    const first = data.shape.map(() => 0);
    const step = data.shape.map(() => 1);
    const shape = [...data.shape];
    axes.forEach((axis, i) => {
      const dim = data.shape[axis] as number;
      const s = steps[i] as number;
      if (s === 0) throw shapeError(node, `step 0 on axis ${axis}`);
      if (dim === BATCH) {
        if (starts[i] !== 0 || s !== 1 || (ends[i] as number) < 2 ** 31) {
          throw shapeError(node, `slices the batch axis of ${formatShape(data.shape)}; fedgate needs static shapes there`);
        }
        return;
      }
      const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v < 0 ? v + dim : v));
      const start = s > 0 ? clamp(starts[i] as number, 0, dim) : clamp(starts[i] as number, 0, dim - 1);
      const end = s > 0 ? clamp(ends[i] as number, 0, dim) : clamp(ends[i] as number, -1, dim - 1);
      first[axis] = start;
      step[axis] = s;
      shape[axis] = Math.max(0, Math.ceil((end - start) / s));
    });
    const value =
      data.value === undefined || data.shape.includes(BATCH)
        ? undefined
        : gatherValues(data.value, data.shape, shape, (index) => index.map((i, axis) => (first[axis] as number) + i * (step[axis] as number)));
    return [{ elemType: data.elemType, shape, ...(value === undefined ? {} : { value }) }];
  },
};
