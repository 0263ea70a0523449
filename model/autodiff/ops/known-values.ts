/**
 * Known integer contents carried through ops that move elements (Transpose, Slice): torch computes F.pad's
 * pads through ConstantOfShape -> Concat -> Reshape -> Slice(step -1) -> Transpose -> Reshape, and the pads
 * must be known statically for the padded shape.
 */
import type { SymbolicInt } from '../facts.js';

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
