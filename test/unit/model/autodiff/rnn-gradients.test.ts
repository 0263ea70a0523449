/**
 * GRU and LSTM: the unrolled training form must compute what ONNX Runtime's own kernels compute (gate
 * order, biases, directions, initial states), and its hand-written backward through time must match
 * central finite differences, for every input that carries a gradient, in one and two layers,
 * uni- and bidirectional, with the Transpose/Reshape wrapping torch.onnx.export writes for batch_first;
 * and the models torch.onnx.export writes for nn.GRU / nn.LSTM must reproduce PyTorch's output and
 * gradients (scripts/torch_reference/rnn_configs.py), which pins the gate order and W/R/B packing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, attr, type AttributeMap } from '../../../../model/graph/builder.js';
import type { GraphIR, NodeIR, ValueInfoIR } from '../../../../model/onnx/ir.js';
import { DataType, type DataTypeCode } from '../../../../model/onnx/schema.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { decodeModel, encodeModel } from '../../../../model/onnx/codec.js';
import { readFloat32 } from '../../../../model/onnx/tensor.js';
import { gradcheck } from '../../../support/model/gradcheck.js';
import { f32, f64, output, pseudoRandom, run, session, type Feed } from '../../../support/model/ort.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../../../support/system-deps.js';

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

// ------------------------------------------------------------------------------------ against PyTorch

const torch = checkSystemDependency(systemDependencies.pythonTorch);
const SCRIPT = fileURLToPath(new URL('../../../../scripts/torch_reference/rnn_configs.py', import.meta.url));
/** float32 forward and backward against PyTorch's float64 on the same weights. */
const TORCH_RNN_TOLERANCE = 1e-5;

interface StoredArray {
  readonly shape: readonly number[];
  readonly file: string;
}
interface TorchConfig {
  readonly name: string;
  readonly model: string;
  readonly x: StoredArray;
  readonly weighting: StoredArray;
  readonly y: StoredArray;
  readonly gradX: string;
  readonly parameters: readonly { readonly name: string; readonly shape: readonly number[]; readonly gradient: string }[];
}

/** The configurations rnn_configs.py writes, in its order. */
const CONFIG_NAMES = (['GRU', 'LSTM'] as const).flatMap((kind) =>
  [1, 2].flatMap((layers) => ['uni', 'bi'].flatMap((dir) => ['bf', 'tm'].map((layout) => `${kind}-l${layers}-${dir}-${layout}`))),
);

function relativeError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < theirs.length; i++) {
    diff += ((ours[i] as number) - (theirs[i] as number)) ** 2;
    norm += (theirs[i] as number) ** 2;
  }
  return ours.length === theirs.length ? Math.sqrt(diff / norm) : Infinity;
}

function prune(nodes: readonly NodeIR[], outputs: readonly string[]): NodeIR[] {
  const needed = new Set(outputs);
  const kept: NodeIR[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as NodeIR;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    kept.unshift(node);
    for (const input of node.inputs) if (input !== '') needed.add(input);
  }
  return kept;
}

/**
 * The exported graph with its W/R/B initializers as inputs (to differentiate them) and torch's zero
 * initial state (an Expand or ConstantOfShape + Slice subgraph, other helpers' ops) as zero-filled inputs.
 */
function differentiableGraph(graph: GraphIR, parameters: ReadonlySet<string>, batch: number): { graph: GraphIR; zeroStates: ValueInfoIR[] } {
  const zeroStates: ValueInfoIR[] = [];
  const nodes = graph.nodes.map((node) => {
    if (node.opType !== 'GRU' && node.opType !== 'LSTM') return node;
    const direction = node.attributes['direction'];
    const directions = direction?.kind === 'string' && direction.value === 'bidirectional' ? 2 : 1;
    const hidden = node.attributes['hidden_size'];
    const inputs = node.inputs.map((name, i) => {
      if (i < 5 || name === '') return name;
      const zero: ValueInfoIR = { name: `zero_state_${zeroStates.length}`, elemType: DataType.FLOAT, shape: [directions, batch, hidden?.kind === 'int' ? hidden.value : 0] };
      zeroStates.push(zero);
      return zero.name;
    });
    return { ...node, inputs };
  });
  const parameterInfos = graph.initializers
    .filter((t) => parameters.has(t.name))
    .map((t): ValueInfoIR => ({ name: t.name, elemType: t.dataType, shape: [...t.dims] }));
  return {
    graph: {
      ...graph,
      nodes: prune(nodes, graph.outputs.map((o) => o.name)),
      initializers: graph.initializers.filter((t) => !parameters.has(t.name)),
      inputs: [...graph.inputs, ...parameterInfos, ...zeroStates],
    },
    zeroStates,
  };
}

describe.skipIf(torch.skip)(`GRU and LSTM as torch.onnx.export writes them match PyTorch ${torch.reason}`, () => {
  let dir = '';
  let configs = new Map<string, TorchConfig>();
  const floats = (file: string): Float32Array => {
    const bytes = readFileSync(join(dir, file));
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedgate-torch-rnn-'));
    const result = spawnSync(DEBIAN_PYTHON, [SCRIPT, dir], { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore', OMP_NUM_THREADS: '1' } });
    if (result.status !== 0) throw new Error(`rnn_configs.py failed (exit ${String(result.status)}): ${result.stderr.slice(-4000)}`);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { configs: TorchConfig[] };
    configs = new Map(manifest.configs.map((c) => [c.name, c]));
  }, 300_000);

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  for (const name of CONFIG_NAMES) {
    it(`${name}: output and gradients of x, W, R, B`, async () => {
      const config = configs.get(name);
      if (config === undefined) throw new Error(`rnn_configs.py wrote no configuration '${name}'`);
      const exported = decodeModel(new Uint8Array(readFileSync(join(dir, config.model)))).graph;
      const parameterNames = config.parameters.map((p) => p.name);
      const batchAxis = name.endsWith('-bf') ? 0 : 1;
      const { graph, zeroStates } = differentiableGraph(exported, new Set(parameterNames), config.x.shape[batchAxis] as number);
      const feeds: Record<string, Feed> = { x: f32(floats(config.x.file), config.x.shape), 'grad.y': f32(floats(config.weighting.file), config.weighting.shape) };
      for (const tensor of exported.initializers) if (parameterNames.includes(tensor.name)) feeds[tensor.name] = f32(readFloat32(tensor), tensor.dims);
      for (const state of zeroStates) {
        const dims = state.shape as number[];
        feeds[state.name] = f32(new Float32Array(dims.reduce((n, d) => n * d, 1)), dims);
      }
      const gradient = await session(encodeModel(modelFromGraph(buildGradientGraph(graph, ['x', ...parameterNames]))));
      const results = await run(gradient, feeds);
      const errors: Record<string, number> = {
        y: relativeError(output(results, 'y').data, floats(config.y.file)),
        x: relativeError(output(results, 'grad.x').data, floats(config.gradX)),
      };
      for (const p of config.parameters) errors[p.name] = relativeError(output(results, `grad.${p.name}`).data, floats(p.gradient));
      console.log(`${name}: max relative error ${Math.max(...Object.values(errors)).toExponential(2)} over y, dx and ${config.parameters.length} parameters`);
      expect(config.parameters.length).toBe(3 * (name.includes('-l2-') ? 2 : 1));
      expect(Object.entries(errors).filter(([, e]) => !(e <= TORCH_RNN_TOLERANCE))).toEqual([]);
    }, 60_000);
  }
});

// ------------------------------------------------------------------------------- what is refused, by name

describe('GRU and LSTM forms fedgate does not train are refused naming what is unsupported', () => {
  const refusal = (kind: Kind, change: { attributes?: AttributeMap; xShape?: (string | number)[]; extraInputs?: Record<number, readonly number[]> }): (() => GraphIR) => () => {
    const b = new GraphBuilder('refused');
    const gated = gatesOf(kind) * 2;
    b.addInput('x', DataType.FLOAT, change.xShape ?? [3, 2, 3]);
    b.addInput('w', DataType.FLOAT, [1, gated, 3]);
    b.addInput('r', DataType.FLOAT, [1, gated, 2]);
    const inputs = ['x', 'w', 'r', '', '', '', '', ''];
    for (const [index, dims] of Object.entries(change.extraInputs ?? {})) {
      inputs[Number(index)] = b.addInput(`extra${index}`, Number(index) === 4 ? DataType.INT32 : DataType.FLOAT, dims);
    }
    const attributes: AttributeMap = { hidden_size: attr.int(2), ...(kind === 'GRU' ? { linear_before_reset: attr.int(1) } : {}), ...change.attributes };
    b.appendNode(kind, inputs.slice(0, kind === 'GRU' ? 6 : 8), ['y', ''], attributes);
    b.addOutput('y', DataType.FLOAT, undefined);
    return buildGradientGraph(b.build(), ['w']);
  };
  const refusals: readonly (readonly [string, Kind, Parameters<typeof refusal>[1], RegExp])[] = [
    ['a dynamic sequence length', 'LSTM', { xShape: ['seq', 'batch', 3] }, /sequence length \(axis 0\) is not fixed/],
    ['cell clipping', 'LSTM', { attributes: { clip: attr.float(3) } }, /clip/],
    ['peepholes', 'LSTM', { extraInputs: { 7: [1, 6] } }, /peephole/],
    ['per-example sequence lengths', 'GRU', { extraInputs: { 4: [2] } }, /sequence_lens/],
    ['other activations', 'GRU', { attributes: { activations: { kind: 'strings', value: ['Relu', 'Tanh'] } } }, /activations \[Relu, Tanh\]/],
    ['GRU with linear_before_reset = 0', 'GRU', { attributes: { linear_before_reset: attr.int(0) } }, /linear_before_reset = 0/],
    ['coupled input and forget gates', 'LSTM', { attributes: { input_forget: attr.int(1) } }, /input_forget/],
    ['batch-major layout', 'GRU', { attributes: { layout: attr.int(1) } }, /layout = 1/],
  ];
  for (const [what, kind, change, message] of refusals) {
    it(`${kind}: ${what}`, () => {
      expect(refusal(kind, change)).toThrow(message);
    });
  }

  it('the default activations spelled out are accepted', () => {
    expect(refusal('LSTM', { attributes: { activations: { kind: 'strings', value: ['Sigmoid', 'Tanh', 'Tanh'] } } })).not.toThrow();
  });
});
