/**
 * Gradient checks of the ops everyday PyTorch exports add to fedgate's set (activations, math,
 * reductions, layer/instance normalisation, slicing, differentiable Gather, Where, masks), each in a tiny
 * graph with L = sum(output * R), against central finite differences in ONNX Runtime: float64 where ONNX
 * Runtime's CPU kernels have it, float32 with a larger step where they do not. Composite graphs
 * reproduce what torch 1.13 writes (exact and tanh GELU, SiLU, decomposed layer norm, GroupNorm through
 * InstanceNormalization, masked attention), so a rule that is right alone but wrong in context fails too.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr, type AttributeMap } from '../../../../model/graph/builder.js';
import type { GraphIR } from '../../../../model/onnx/ir.js';
import { DataType, type DataTypeCode } from '../../../../model/onnx/schema.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { ModelError } from '../../../../model/errors.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { gradcheck } from '../../../support/model/gradcheck.js';
import { f32, f64, output, pseudoRandom, run, session, type Feed } from '../../../support/model/ort.js';

type Precision = 'float64' | 'float32';

interface Differentiated {
  readonly name: string;
  readonly dims: readonly number[];
  readonly range?: readonly [number, number];
  readonly values?: readonly number[];
}
interface Constant {
  readonly constant: { readonly dataType: DataTypeCode | 'float'; readonly dims: readonly number[]; readonly values: readonly number[] };
}
type Operand = Differentiated | Constant;

interface OpCase {
  readonly name: string;
  readonly op: string;
  readonly operands: readonly Operand[];
  readonly attributes?: AttributeMap;
  readonly precision?: Precision;
  readonly opset?: number;
}

const INT64 = DataType.INT64;
const BOOL = DataType.BOOL;
const x = (dims: readonly number[], range?: readonly [number, number], name = 'x'): Differentiated => ({ name, dims, ...(range === undefined ? {} : { range }) });
const ints = (values: readonly number[], dims: readonly number[] = [values.length]): Constant => ({ constant: { dataType: INT64, dims, values } });
const floats = (values: readonly number[], dims: readonly number[] = [values.length]): Constant => ({ constant: { dataType: 'float', dims, values } });
/** Values at least 0.05 from `kinks`, so the finite-difference step never crosses one. */
const awayFrom = (count: number, seed: number, kinks: readonly number[], lo = -4, hi = 4): number[] =>
  pseudoRandom(count, seed, lo, hi).map((v) => {
    for (const k of kinks) if (Math.abs(v - k) < 0.05) return k + (v < k ? -0.1 : 0.1);
    return v;
  });

function graphFor(c: OpCase): { graph: GraphIR; feeds: Record<string, Feed>; wrt: string[] } {
  const elemType = c.precision === 'float32' ? DataType.FLOAT : DataType.DOUBLE;
  const b = new GraphBuilder(c.name);
  const feeds: Record<string, Feed> = {};
  const names: string[] = [];
  const wrt: string[] = [];
  let seed = 11;
  for (const operand of c.operands) {
    if ('constant' in operand) {
      const k = operand.constant;
      names.push(b.constant(k.dataType === 'float' ? elemType : k.dataType, k.dims, k.values));
      continue;
    }
    b.addInput(operand.name, elemType, operand.dims);
    const count = operand.dims.reduce((n, d) => n * d, 1);
    const values = operand.values ?? pseudoRandom(count, seed++, operand.range?.[0] ?? -1, operand.range?.[1] ?? 1);
    feeds[operand.name] = elemType === DataType.FLOAT ? f32(values, operand.dims) : f64(values, operand.dims);
    names.push(operand.name);
    wrt.push(operand.name);
  }
  b.appendNode(c.op, names, ['y'], c.attributes ?? {});
  b.addOutput('y', elemType, undefined);
  return { graph: b.build(), feeds, wrt };
}

async function expectGradientsMatch(graph: GraphIR, feeds: Record<string, Feed>, wrt: readonly string[], precision: Precision = 'float64', opset?: number): Promise<void> {
  const float32 = precision === 'float32';
  const result = await gradcheck(graph, feeds, {
    wrt,
    step: float32 ? 1e-2 : 1e-6,
    atol: float32 ? 2e-3 : 1e-7,
    rtol: float32 ? 1e-2 : 1e-6,
    ...(opset === undefined ? {} : { opset }),
  });
  expect(result.mismatches).toEqual([]);
  expect(result.checked).toBeGreaterThan(0);
  expect(result.largestGradient).toBeGreaterThan(1e-3);
}

const cases: OpCase[] = [
  // activations
  { name: 'LeakyRelu alpha 0.2', op: 'LeakyRelu', operands: [{ name: 'x', dims: [3, 4], values: awayFrom(12, 1, [0]) }], attributes: { alpha: attr.float(0.2) }, precision: 'float32' },
  { name: 'Elu alpha 0.7', op: 'Elu', operands: [{ name: 'x', dims: [3, 4], values: awayFrom(12, 2, [0], -2, 2) }], attributes: { alpha: attr.float(0.7) }, precision: 'float32' },
  { name: 'Selu', op: 'Selu', operands: [{ name: 'x', dims: [3, 4], values: awayFrom(12, 3, [0], -2, 2) }], precision: 'float32' },
  { name: 'Softplus', op: 'Softplus', operands: [x([3, 4], [-3, 3])], precision: 'float32' },
  { name: 'HardSigmoid (torch alpha 1/6)', op: 'HardSigmoid', operands: [{ name: 'x', dims: [4, 5], values: awayFrom(20, 4, [-3, 3]) }], attributes: { alpha: attr.float(1 / 6) }, precision: 'float32' },
  { name: 'HardSwish', op: 'HardSwish', operands: [{ name: 'x', dims: [4, 5], values: awayFrom(20, 5, [-3, 3]) }], precision: 'float32' },
  // math
  { name: 'Exp', op: 'Exp', operands: [x([3, 4], [-2, 2])] },
  { name: 'Log', op: 'Log', operands: [x([3, 4], [0.5, 3])] },
  { name: 'Sqrt', op: 'Sqrt', operands: [x([3, 4], [0.5, 3])] },
  { name: 'Abs', op: 'Abs', operands: [{ name: 'x', dims: [3, 4], values: awayFrom(12, 6, [0], -2, 2) }] },
  { name: 'Neg', op: 'Neg', operands: [x([3, 4])] },
  { name: 'Reciprocal', op: 'Reciprocal', operands: [x([3, 4], [0.5, 2])] },
  { name: 'Erf', op: 'Erf', operands: [x([3, 4], [-2, 2])], precision: 'float32' },
  { name: 'Pow, constant exponent 2 (as torch writes x.pow(2)), negative bases', op: 'Pow', operands: [x([3, 4]), floats([2], [])] },
  { name: 'Pow, constant exponent 3', op: 'Pow', operands: [x([3, 4]), floats([3], [])] },
  { name: 'Pow, both differentiable, exponent broadcast', op: 'Pow', operands: [x([2, 3], [0.5, 2], 'a'), x([3], [-1.5, 1.5], 'b')] },
  { name: 'Sum of three, broadcast', op: 'Sum', operands: [x([2, 3], undefined, 'a'), x([3], undefined, 'b'), x([2, 1], undefined, 'c')] },
  { name: 'Mean of three, broadcast', op: 'Mean', operands: [x([2, 3], undefined, 'a'), x([1, 3], undefined, 'b'), x([], undefined, 'c')], precision: 'float32' },
  { name: 'Max of three, broadcast', op: 'Max', operands: [x([2, 3], undefined, 'a'), x([3], undefined, 'b'), x([2, 1], undefined, 'c')] },
  { name: 'Min of two', op: 'Min', operands: [x([3, 4], undefined, 'a'), x([3, 4], undefined, 'b')] },
  // At a tie the central difference of min(a, b) is 1/2 for each input: the rule must split, not copy.
  { name: 'Min of two with ties: the gradient is split', op: 'Min', operands: [{ name: 'a', dims: [4], values: [0.5, -0.25, 1, 0.75] }, { name: 'b', dims: [4], values: [0.5, 0.3, 1, -0.5] }] },
  // reductions
  { name: 'ReduceSum, axes input, keepdims 0', op: 'ReduceSum', operands: [x([2, 3, 4]), ints([0, -1])], attributes: { keepdims: attr.int(0) } },
  { name: 'ReduceSum, no axes: all', op: 'ReduceSum', operands: [x([2, 3])] },
  { name: 'ReduceMean, axes attribute (opset 13), keepdims 1', op: 'ReduceMean', operands: [x([2, 3, 4])], attributes: { axes: attr.ints([1]) } },
  { name: 'ReduceMean, axes attribute, keepdims 0, two axes', op: 'ReduceMean', operands: [x([2, 3, 4])], attributes: { axes: attr.ints([0, 2]), keepdims: attr.int(0) } },
  { name: 'ReduceMean, axes input (opset 18)', op: 'ReduceMean', operands: [x([2, 3, 4]), ints([-1])], attributes: { keepdims: attr.int(0) }, opset: 18 },
  { name: 'ReduceSum, axes attribute (opset 12)', op: 'ReduceSum', operands: [x([2, 3, 4])], attributes: { axes: attr.ints([1, 2]), keepdims: attr.int(0) }, opset: 12 },
  { name: 'ReduceSum, empty axes with noop_with_empty_axes: identity', op: 'ReduceSum', operands: [x([2, 3]), ints([])], attributes: { noop_with_empty_axes: attr.int(1) } },
  { name: 'ReduceMax, axes input (opset 18)', op: 'ReduceMax', operands: [x([3, 5]), ints([0])], opset: 18 },
  { name: 'ReduceMax, axes attribute', op: 'ReduceMax', operands: [x([3, 5])], attributes: { axes: attr.ints([1]), keepdims: attr.int(0) } },
  { name: 'ReduceMax with a tied maximum: the gradient is split', op: 'ReduceMax', operands: [{ name: 'x', dims: [2, 3], values: [0.75, 0.1, 0.75, -0.2, 0.4, 0.3] }], attributes: { axes: attr.ints([1]) } },
  // normalisation
  { name: 'LayerNormalization axis -1', op: 'LayerNormalization', operands: [x([3, 5], [-2, 2]), x([5], [0.5, 1.5], 'scale'), x([5], undefined, 'bias')], precision: 'float32' },
  { name: 'LayerNormalization axis 1 over [3, 4], no bias', op: 'LayerNormalization', operands: [x([2, 3, 4], [-2, 2]), x([3, 4], [0.5, 1.5], 'scale')], attributes: { axis: attr.int(1) }, precision: 'float32' },
  { name: 'InstanceNormalization', op: 'InstanceNormalization', operands: [x([2, 3, 5], [-2, 2]), x([3], [0.5, 1.5], 'scale'), x([3], undefined, 'bias')], precision: 'float32' },
  // slicing
  { name: 'Slice with axes, negative start, clamped end', op: 'Slice', operands: [x([3, 6]), ints([-4]), ints([1000]), ints([1])] },
  { name: 'Slice two axes, step 2', op: 'Slice', operands: [x([4, 7]), ints([1, 0]), ints([4, 7]), ints([0, 1]), ints([1, 2])] },
  { name: 'Slice step 3 leaving a tail', op: 'Slice', operands: [x([2, 10]), ints([1]), ints([9]), ints([-1]), ints([3])] },
  { name: 'Slice step -1 (flip)', op: 'Slice', operands: [x([2, 5]), ints([-1]), ints([-(2 ** 62)]), ints([1]), ints([-1])] },
  { name: 'Slice step -2 from the middle', op: 'Slice', operands: [x([3, 8]), ints([6]), ints([0]), ints([1]), ints([-2])] },
  { name: 'Expand [3, 1] to [2, 3, 4]', op: 'Expand', operands: [x([3, 1]), ints([2, 3, 4])] },
  { name: 'Trilu upper, k 1', op: 'Trilu', operands: [x([2, 4, 4]), ints([1], [])] },
  { name: 'Trilu lower, k default', op: 'Trilu', operands: [x([3, 5])], attributes: { upper: attr.int(0) } },
  { name: 'Tile [2, 3] by [2, 3]', op: 'Tile', operands: [x([2, 3]), ints([2, 3])] },
  // indexing
  {
    name: 'Where, broadcast condition, both branches differentiable',
    op: 'Where',
    operands: [{ constant: { dataType: BOOL, dims: [1, 4], values: [1, 0, 0, 1] } }, x([3, 4], undefined, 'a'), x([4], undefined, 'b')],
  },
  { name: 'Gather axis 0, repeated and negative ids (embedding)', op: 'Gather', operands: [x([5, 4], undefined, 'table'), ints([1, 3, 1, 0, 1, -1], [2, 3])] },
  { name: 'Gather axis 1, repeated indices', op: 'Gather', operands: [x([3, 5, 2]), ints([2, 2, 4, 0], [2, 2])], attributes: { axis: attr.int(1) } },
  { name: 'Gather scalar index axis -1', op: 'Gather', operands: [x([3, 4]), ints([2], [])], attributes: { axis: attr.int(-1) } },
  { name: 'GatherElements axis 1, repeated indices', op: 'GatherElements', operands: [x([3, 4]), ints([0, 0, 3, 1, 1, 1, 2, -1, 2], [3, 3])], attributes: { axis: attr.int(1) } },
];

describe('gradients of the everyday-PyTorch ops match central finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const { graph, feeds, wrt } = graphFor(c);
      await expectGradientsMatch(graph, feeds, wrt, c.precision, c.opset);
    });
  }
});

/** A graph built by `body` from the double input(s) it declares, checked against finite differences. */
async function checkComposite(
  name: string,
  inputs: Readonly<Record<string, readonly number[]>>,
  body: (b: GraphBuilder, type: DataTypeCode) => string,
  precision: Precision = 'float64',
  values: Readonly<Record<string, readonly number[]>> = {},
  opset?: number,
): Promise<void> {
  const type = precision === 'float32' ? DataType.FLOAT : DataType.DOUBLE;
  const b = new GraphBuilder(name);
  const feeds: Record<string, Feed> = {};
  let seed = 31;
  for (const [input, dims] of Object.entries(inputs)) {
    b.addInput(input, type, dims);
    const data = values[input] ?? pseudoRandom(dims.reduce((n, d) => n * d, 1), seed++, -1.5, 1.5);
    feeds[input] = type === DataType.FLOAT ? f32(data, dims) : f64(data, dims);
  }
  b.appendNode('Identity', [body(b, type)], ['y'], {});
  b.addOutput('y', type, undefined);
  await expectGradientsMatch(b.build(), feeds, Object.keys(inputs), precision, opset);
}

describe('what torch 1.13 exports, node by node, differentiates correctly', () => {
  it('Split by a split input, both outputs used', async () => {
    await checkComposite('split', { x: [2, 5] }, (b) => {
      const [p, q] = b.node('Split', ['x', b.int64s([2, 3])], { outputs: 2, attributes: { axis: attr.int(1) } }) as [string, string];
      return b.op('Concat', [b.op('Mul', [p, p]), b.op('Tanh', [q])], { axis: attr.int(1) });
    });
  });

  it('Split into equal parts with one output unused (its gradient is zero)', async () => {
    await checkComposite('split-unused', { x: [4, 3] }, (b) => {
      const [first] = b.node('Split', ['x'], { outputs: 2, attributes: { axis: attr.int(0) } }) as [string, string];
      return b.op('Tanh', [first]);
    });
  });

  it('an empty Slice contributes a zero gradient', async () => {
    await checkComposite('empty-slice', { x: [2, 3] }, (b) => {
      const empty = b.op('Slice', ['x', b.int64s([3]), b.int64s([1000]), b.int64s([1])]);
      return b.op('Concat', [empty, b.op('Tanh', ['x'])], { axis: attr.int(1) });
    });
  });

  it('Split by num_outputs (opset 18), the last part shorter', async () => {
    await checkComposite('split-num-outputs', { x: [2, 7] }, (b) => {
      const parts = b.node('Split', ['x'], { outputs: 3, attributes: { axis: attr.int(-1), num_outputs: attr.int(3) } }) as [string, string, string];
      return b.op('Concat', [b.op('Mul', [parts[0], parts[1]]), b.op('Tanh', [parts[2]])], { axis: attr.int(1) });
    }, 'float64', {}, 18);
  });

  it('GELU, exact form (Div, Erf, Add, Mul, Mul)', async () => {
    await checkComposite('gelu-erf', { x: [3, 4] }, (b, t) => {
      const erf = b.op('Erf', [b.op('Div', ['x', b.scalar(Math.SQRT2, t)])]);
      return b.op('Mul', [b.op('Mul', ['x', b.op('Add', [erf, b.scalar(1, t)])]), b.scalar(0.5, t)]);
    }, 'float32');
  });

  it('GELU, tanh form (Mul, Mul, Mul, Add, Mul, Tanh, Add, Mul, Mul)', async () => {
    await checkComposite('gelu-tanh', { x: [3, 4] }, (b, t) => {
      const cube = b.op('Mul', ['x', b.op('Mul', ['x', 'x'])]);
      const inner = b.op('Mul', [b.scalar(Math.sqrt(2 / Math.PI), t), b.op('Add', ['x', b.op('Mul', [b.scalar(0.044715, t), cube])])]);
      return b.op('Mul', [b.scalar(0.5, t), b.op('Mul', ['x', b.op('Add', [b.scalar(1, t), b.op('Tanh', [inner])])])]);
    });
  });

  it('SiLU (Sigmoid, Mul)', async () => {
    // float32: ORT fuses x * sigmoid(x) into QuickGelu, which has no float64 kernel.
    await checkComposite('silu', { x: [3, 4] }, (b) => b.op('Mul', ['x', b.op('Sigmoid', ['x'])]), 'float32');
  });

  it('decomposed layer norm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div)', async () => {
    await checkComposite('layer-norm-decomposed', { x: [3, 5] }, (b, t) => {
      const mean = b.op('ReduceMean', ['x'], { axes: attr.ints([-1]), keepdims: attr.int(1) });
      const centred = b.op('Sub', ['x', mean]);
      const variance = b.op('ReduceMean', [b.op('Pow', [centred, b.scalar(2, t)])], { axes: attr.ints([-1]), keepdims: attr.int(1) });
      return b.op('Div', [centred, b.op('Sqrt', [b.op('Add', [variance, b.scalar(1e-5, t)])])]);
    });
  });

  it('GroupNorm as exported (Reshape, InstanceNormalization with unit scale, Reshape, Mul, Add)', async () => {
    await checkComposite('group-norm', { x: [2, 6, 3], w: [6, 1], bias: [6, 1] }, (b, t) => {
      const grouped = b.op('Reshape', ['x', b.int64s([0, 2, -1])]);
      const normalised = b.op('InstanceNormalization', [grouped, b.constant(t, [2], [1, 1]), b.constant(t, [2], [0, 0])], { epsilon: attr.float(1e-5) });
      const back = b.op('Reshape', [normalised, b.op('Shape', ['x'])]);
      return b.op('Add', [b.op('Mul', [back, 'w']), 'bias']);
    }, 'float32');
  });

  it('masked attention: batched MatMul with broadcasting, -inf key-padding mask via Where/Add, Softmax on the last axis', async () => {
    // q [B, H, S, d], k and v [B, 1, S, d] (broadcast over heads), mask [B, 1, 1, S]: the last key of
    // example 1 is padding and must get no gradient through the masked scores.
    await checkComposite('attention', { q: [2, 2, 3, 4], k: [2, 1, 3, 4], v: [2, 1, 3, 4] }, (b, t) => {
      const mask = b.constant(BOOL, [2, 1, 1, 3], [0, 0, 0, 0, 0, 1]);
      const bias = b.op('Where', [mask, b.scalar(-Infinity, t), b.scalar(0, t)]);
      const scores = b.op('Div', [b.op('MatMul', ['q', b.op('Transpose', ['k'], { perm: attr.ints([0, 1, 3, 2]) })]), b.scalar(2, t)]);
      const weights = b.op('Softmax', [b.op('Add', [scores, bias])], { axis: attr.int(-1) });
      return b.op('MatMul', [weights, 'v']);
    });
  });

  it('comparisons and logic only make masks: the gradient flows through the Where they select with', async () => {
    await checkComposite('masks', { x: [3, 4] }, (b, t) => {
      const positive = b.op('Greater', ['x', b.scalar(0, t)]);
      const small = b.op('Less', ['x', b.scalar(0.5, t)]);
      const keep = b.op('Or', [b.op('And', [positive, small]), b.op('Not', [b.op('GreaterOrEqual', ['x', b.scalar(-0.5, t)])])]);
      const doubled = b.op('Mul', ['x', b.scalar(2, t)]);
      return b.op('Where', [b.op('Xor', [keep, b.op('Equal', [b.op('LessOrEqual', ['x', b.scalar(-0.5, t)]), b.op('Greater', ['x', b.scalar(9, t)])])]), doubled, b.op('Tanh', ['x'])]);
    }, 'float64', { x: awayFrom(12, 8, [0, 0.5, -0.5], -1, 1) });
  });

  it('Gelu-20 (exact and tanh) lowers to opset 17 with the same gradient as its decomposition', async () => {
    for (const approximate of ['none', 'tanh']) {
      const values = pseudoRandom(12, 3, -3, 3);
      const gradientOf = async (body: (b: GraphBuilder) => string): Promise<Float64Array> => {
        const b = new GraphBuilder('gelu');
        b.addInput('x', DataType.FLOAT, [3, 4]);
        b.appendNode('Identity', [body(b)], ['y'], {});
        b.addOutput('y', DataType.FLOAT, [3, 4]);
        const s = await session(encodeModel(modelFromGraph(buildGradientGraph(b.build(), ['x']))));
        const results = await run(s, { x: f32(values, [3, 4]), 'grad.y': f32(new Array<number>(12).fill(1), [3, 4]) });
        return output(results, 'grad.x').data;
      };
      const fused = await gradientOf((b) => b.op('Gelu', ['x'], { approximate: attr.string(approximate) }));
      const decomposed = await gradientOf((b) => {
        const t = DataType.FLOAT;
        if (approximate === 'none') {
          const erf = b.op('Erf', [b.op('Div', ['x', b.scalar(Math.SQRT2, t)])]);
          return b.op('Mul', [b.op('Mul', ['x', b.op('Add', [erf, b.scalar(1, t)])]), b.scalar(0.5, t)]);
        }
        const cube = b.op('Mul', ['x', b.op('Mul', ['x', 'x'])]);
        const inner = b.op('Mul', [b.scalar(Math.sqrt(2 / Math.PI), t), b.op('Add', ['x', b.op('Mul', [b.scalar(0.044715, t), cube])])]);
        return b.op('Mul', [b.scalar(0.5, t), b.op('Mul', ['x', b.op('Add', [b.scalar(1, t), b.op('Tanh', [inner])])])]);
      });
      fused.forEach((g, i) => expect(g, `${approximate} [${i}]`).toBeCloseTo(decomposed[i] as number, 5));
      // x = -3 .. 3 covers both tails: the slope really varies (not a constant 0.5 or 1).
      expect(Math.max(...fused) - Math.min(...fused)).toBeGreaterThan(0.9);
    }
  });
});

describe('unsupported ops', () => {
  it('are all listed by name in one error, alongside the new ops that are supported', () => {
    const b = new GraphBuilder('unsupported');
    b.addInput('x', DataType.FLOAT, [2, 3]);
    const unique = b.op('Unique', [b.op('LayerNormalization', ['x', b.constant(DataType.FLOAT, [3], [1, 1, 1])])]);
    b.appendNode('Einsum', [b.op('Erf', [unique])], ['y'], { equation: attr.string('ij->ji') });
    b.addOutput('y', DataType.FLOAT, [3, 2]);
    let caught: unknown;
    try {
      buildGradientGraph(b.build(), ['x']);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ModelError);
    const message = (caught as ModelError).message;
    expect(message).toMatch(/unsupported ONNX ops: Unique \(node '[^']+'\), Einsum \(node '[^']+'\)/);
    expect(message).not.toMatch(/LayerNormalization \(node/);
    expect(message).not.toMatch(/Erf \(node/);
  });
});
