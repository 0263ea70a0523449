/**
 * GRU and LSTM: the unrolled training form must compute what ONNX Runtime's own kernels compute (gate
 * order, biases, directions, initial states), and its hand-written backward through time must match
 * central finite differences, for every input that carries a gradient, in one and two layers,
 * uni- and bidirectional, with the Transpose/Reshape wrapping torch.onnx.export writes for batch_first.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr, type AttributeMap } from '../../../../model/graph/builder.js';
import type { GraphIR } from '../../../../model/onnx/ir.js';
import { DataType, type DataTypeCode } from '../../../../model/onnx/schema.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { gradcheck } from '../../../support/model/gradcheck.js';
import { f32, f64, output, pseudoRandom, run, session, type Feed } from '../../../support/model/ort.js';

type Kind = 'GRU' | 'LSTM';
type Direction = 'forward' | 'reverse' | 'bidirectional';

interface RnnCase {
  readonly kind: Kind;
  readonly direction: Direction;
  readonly seq: number;
  readonly batch: number;
  readonly input: number;
  readonly hidden: number;
  readonly bias: boolean;
  /** Initial hidden (and cell) state as inputs. */
  readonly initialState: boolean;
  /** Which outputs the graph reads: all of them (flattened and concatenated) or the last state only. */
  readonly reads: 'all' | 'last';
}

const gatesOf = (kind: Kind): number => (kind === 'GRU' ? 3 : 4);
const directionsOf = (direction: Direction): number => (direction === 'bidirectional' ? 2 : 1);

/** One GRU/LSTM node; every tensor input is a graph input so gradients of all of them are checked. */
function singleNodeGraph(c: RnnCase, elemType: DataTypeCode): { graph: GraphIR; shapes: Record<string, number[]> } {
  const b = new GraphBuilder(`${c.kind}_${c.direction}`);
  const nd = directionsOf(c.direction);
  const gated = gatesOf(c.kind) * c.hidden;
  const shapes: Record<string, number[]> = {
    x: [c.seq, c.batch, c.input],
    w: [nd, gated, c.input],
    r: [nd, gated, c.hidden],
  };
  if (c.bias) shapes['b'] = [nd, 2 * gated];
  if (c.initialState) {
    shapes['h0'] = [nd, c.batch, c.hidden];
    if (c.kind === 'LSTM') shapes['c0'] = [nd, c.batch, c.hidden];
  }
  for (const [name, dims] of Object.entries(shapes)) b.addInput(name, elemType, dims);
  const inputs = ['x', 'w', 'r', c.bias ? 'b' : '', '', c.initialState ? 'h0' : ''];
  if (c.kind === 'LSTM') inputs.push(c.initialState ? 'c0' : '');
  const attributes: AttributeMap = {
    hidden_size: attr.int(c.hidden),
    ...(c.direction === 'forward' ? {} : { direction: attr.string(c.direction) }),
    ...(c.kind === 'GRU' ? { linear_before_reset: attr.int(1) } : {}),
  };
  const stateCount = c.kind === 'LSTM' ? 2 : 1;
  if (c.reads === 'last') {
    const outputs = ['', 'y_h', ...(c.kind === 'LSTM' ? [''] : [])];
    b.appendNode(c.kind, inputs, outputs, attributes);
    b.appendNode('Identity', ['y_h'], ['y'], {});
    b.addOutput('y', elemType, [nd, c.batch, c.hidden]);
  } else {
    const outputs = ['y_seq', 'y_h', ...(c.kind === 'LSTM' ? ['y_c'] : [])];
    b.appendNode(c.kind, inputs, outputs, attributes);
    const flat = outputs.map((name) => b.op('Reshape', [name, b.int64s([-1])]));
    b.appendNode('Concat', flat, ['y'], { axis: attr.int(0) });
    b.addOutput('y', elemType, [(c.seq + stateCount) * nd * c.batch * c.hidden]);
  }
  return { graph: b.build(), shapes };
}

function feedsFor(shapes: Record<string, number[]>, precision: 'float32' | 'float64'): Record<string, Feed> {
  const feeds: Record<string, Feed> = {};
  let seed = 21;
  for (const [name, dims] of Object.entries(shapes)) {
    const count = dims.reduce((n, d) => n * d, 1);
    // Weights in [-0.8, 0.8): gates neither saturate nor stay linear.
    const values = pseudoRandom(count, seed++, -0.8, 0.8);
    feeds[name] = precision === 'float32' ? f32(values, dims) : f64(values, dims);
  }
  return feeds;
}

const base = { seq: 3, batch: 2, input: 3, hidden: 2, bias: true, initialState: false, reads: 'all' } as const;

const cases: RnnCase[] = (['GRU', 'LSTM'] as const).flatMap((kind) => [
  { ...base, kind, direction: 'forward' },
  { ...base, kind, direction: 'reverse' },
  { ...base, kind, direction: 'bidirectional' },
  { ...base, kind, direction: 'forward', initialState: true },
  { ...base, kind, direction: 'bidirectional', initialState: true, seq: 4 },
  { ...base, kind, direction: 'forward', bias: false },
  { ...base, kind, direction: 'bidirectional', reads: 'last' },
  { ...base, kind, direction: 'reverse', seq: 1, initialState: true },
]);

const describeCase = (c: RnnCase): string =>
  `${c.kind} ${c.direction}, seq ${c.seq}${c.bias ? '' : ', no B'}${c.initialState ? ', initial state' : ''}${c.reads === 'last' ? ', Y_h only' : ''}`;

/** Runs the gradient graph (unrolled training form) and the forward graph (the native op) in float32. */
async function trainingAndNativeOutputs(graph: GraphIR, feeds: Record<string, Feed>, wrt: readonly string[]): Promise<{ unrolled: Float64Array; native: Float64Array }> {
  const native = output(await run(await session(encodeModel(modelFromGraph(graph))), feeds), 'y');
  const gradient = await session(encodeModel(modelFromGraph(buildGradientGraph(graph, wrt))));
  const seed = f32(new Float32Array(native.data.length), native.dims);
  const unrolled = output(await run(gradient, { ...feeds, 'grad.y': seed }), 'y');
  return { unrolled: unrolled.data, native: native.data };
}

describe('GRU and LSTM training form', () => {
  for (const c of cases) {
    it(`${describeCase(c)}: the unrolled forward equals ONNX Runtime's kernel`, async () => {
      const { graph, shapes } = singleNodeGraph(c, DataType.FLOAT);
      const { unrolled, native } = await trainingAndNativeOutputs(graph, feedsFor(shapes, 'float32'), Object.keys(shapes));
      expect(unrolled.length).toBe(native.length);
      let largest = 0;
      native.forEach((v, i) => {
        largest = Math.max(largest, Math.abs(v));
        expect(Math.abs((unrolled[i] as number) - v)).toBeLessThan(1e-5);
      });
      expect(largest).toBeGreaterThan(0.05);
    });

    it(`${describeCase(c)}: gradients of every input match finite differences`, async () => {
      const { graph, shapes } = singleNodeGraph(c, DataType.DOUBLE);
      const result = await gradcheck(graph, feedsFor(shapes, 'float64'), { wrt: Object.keys(shapes), step: 1e-6, atol: 1e-8, rtol: 1e-6 });
      expect(result.mismatches).toEqual([]);
      expect(result.checked).toBe(Object.values(shapes).reduce((n, dims) => n + dims.reduce((m, d) => m * d, 1), 0));
      expect(result.largestGradient).toBeGreaterThan(1e-2);
    });
  }
});
