/**
 * Where the batch sits inside a merged dimension. Static facts say a dimension is k x B ([B*H, T, d],
 * [T*B, E]) but not whether B is the outer or the inner factor; per-example forms need to know, to view
 * the value with a plain batch axis ([T, B, E]) before a parameter meets it. The layout of a value lists,
 * per axis, its factors in row-major order (outer first), BATCH for the batch: [T*B, E] made by
 * Reshape([T, B, E]) is [[T, BATCH], [E]]. It is derived through the ops that move elements without
 * mixing examples - Reshape/Flatten (factors regrouped, a plain factor split where needed), Transpose,
 * elementwise ops, Softmax, MatMul of two batched operands (attention) - and is unknown elsewhere.
 */
import type { NodeIR } from '../onnx/ir.js';
import { BATCH, intsAttr, isBatchDim, type ValueFacts } from '../autodiff/facts.js';

export type Layout = readonly (readonly number[])[];

const SAME_LAYOUT = new Set([
  'Identity', 'Cast', 'Relu', 'Sigmoid', 'Tanh', 'Neg', 'Exp', 'Log', 'Sqrt', 'Abs', 'Reciprocal', 'Erf', 'Elu',
  'LeakyRelu', 'Selu', 'Softplus', 'Gelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Softmax', 'LogSoftmax', 'Dropout',
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Where',
]);

/** Regroups the row-major factors of `from` into the dimensions of `shape`; undefined if they do not split cleanly. */
function regroup(from: Layout, shape: readonly number[]): Layout | undefined {
  const factors = from.flat();
  const out: number[][] = [];
  let next = 0;
  let carry: number | undefined;
  const take = (): number | undefined => {
    if (carry !== undefined) {
      const value = carry;
      carry = undefined;
      return value;
    }
    return factors[next++];
  };
  for (const dim of shape) {
    const axis: number[] = [];
    let needBatch = isBatchDim(dim);
    let need = Math.abs(dim);
    while (need > 1 || needBatch) {
      const factor = take();
      if (factor === undefined) return undefined;
      if (factor === BATCH) {
        if (!needBatch) return undefined;
        needBatch = false;
        axis.push(BATCH);
      } else if (factor === 1) {
        continue;
      } else if (need % factor === 0) {
        need /= factor;
        axis.push(factor);
      } else if (need > 1 && factor % need === 0) {
        // A plain factor split across this axis and the next.
        axis.push(need);
        carry = factor / need;
        need = 1;
      } else {
        return undefined;
      }
    }
    out.push(axis);
  }
  while (carry === 1 || factors[next] === 1) take();
  return carry === undefined && next >= factors.length ? out : undefined;
}

/**
 * The layout of `name`, or undefined when it cannot be derived. `factsOf` and `producer` read the source
 * model; `memo` caches per value.
 */
export function layoutOf(
  name: string,
  factsOf: (name: string) => ValueFacts | undefined,
  producer: (name: string) => NodeIR | undefined,
  memo: Map<string, Layout | undefined> = new Map(),
): Layout | undefined {
  if (memo.has(name)) return memo.get(name);
  memo.set(name, undefined); // cycles cannot occur in a sorted graph; this guards re-entry anyway
  const facts = factsOf(name);
  let layout: Layout | undefined;
  if (facts !== undefined) {
    const batchDims = facts.shape.filter(isBatchDim);
    if (batchDims.length === 1 && batchDims[0] === BATCH) layout = facts.shape.map((d) => [d]);
    else if (batchDims.length === 1) layout = derived(name, facts, factsOf, producer, memo);
  }
  memo.set(name, layout);
  return layout;
}

function derived(
  name: string,
  facts: ValueFacts,
  factsOf: (name: string) => ValueFacts | undefined,
  producer: (name: string) => NodeIR | undefined,
  memo: Map<string, Layout | undefined>,
): Layout | undefined {
  const node = producer(name);
  if (node === undefined || node.outputs[0] !== name) return undefined;
  const of = (input: string): Layout | undefined => (input === '' ? undefined : layoutOf(input, factsOf, producer, memo));
  const op = node.opType;
  if (op === 'Reshape' || op === 'Flatten') {
    const source = of(node.inputs[0] as string);
    return source === undefined ? undefined : regroup(source, facts.shape);
  }
  if (op === 'Transpose') {
    const source = of(node.inputs[0] as string);
    if (source === undefined) return undefined;
    const perm = intsAttr(node, 'perm') ?? source.map((_, i) => source.length - 1 - i);
    return perm.map((p) => source[p] as readonly number[]);
  }
  if (SAME_LAYOUT.has(op)) {
    // Every batched operand (a mask may broadcast along other axes) must hold the batch on the same
    // axis with the same factors; the other axes are plain.
    let batchAxis: number | undefined;
    let batchFactors: readonly number[] | undefined;
    for (const input of node.inputs) {
      const f = input === '' ? undefined : factsOf(input);
      if (f === undefined || !f.shape.some(isBatchDim)) continue;
      // A ConstantOfShape fill is the same for every example: it has no layout to agree with.
      if (producer(input)?.opType === 'ConstantOfShape') continue;
      const layout = of(input);
      if (layout === undefined || f.shape.length !== facts.shape.length) return undefined;
      const axis = layout.findIndex((factors) => factors.includes(BATCH));
      const factors = layout[axis] ?? [];
      if (batchAxis !== undefined && (batchAxis !== axis || (batchFactors ?? []).join(',') !== factors.join(','))) return undefined;
      batchAxis = axis;
      batchFactors = factors;
    }
    if (batchAxis === undefined || batchFactors === undefined) return undefined;
    const factors = batchFactors;
    return facts.shape.map((d, i) => (i === batchAxis ? factors : d === 1 ? [] : [d]));
  }
  if (op === 'MatMul') {
    const [a, b] = node.inputs as [string, string];
    const la = of(a);
    const fb = factsOf(b);
    if (la === undefined || fb === undefined || la.length !== facts.shape.length) return undefined;
    const rank = facts.shape.length;
    if (fb.shape.some(isBatchDim)) {
      const lb = of(b);
      if (lb === undefined || lb.length !== rank || JSON.stringify(lb.slice(0, -2)) !== JSON.stringify(la.slice(0, -2)) || (lb[rank - 1] ?? []).includes(BATCH)) return undefined;
    }
    return [...la.slice(0, -1), [facts.shape[rank - 1] as number]];
  }
  return undefined;
}
