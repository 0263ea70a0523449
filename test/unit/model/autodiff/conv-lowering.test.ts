/**
 * The lowered forms of Conv (model/autodiff/ops/conv-taps.ts) compute what ONNX Runtime's own Conv
 * computes. The gradient checks (conv-op-gradients.test.ts) differentiate the emitted forward against
 * itself, so a lowered forward that were wrong in a way its backward matched would pass there; here the
 * training-form output is compared with the plain Conv node run by ONNX Runtime, and each case asserts
 * which form was emitted, so a threshold change cannot quietly turn a case into a test of the plain op.
 */
import { describe, expect, it } from 'vitest';
import { attr, GraphBuilder, type AttributeMap } from '../../../../model/graph/builder.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { convLowering, DEPTHWISE_MAX_CELLS, DEPTHWISE_MAX_POSITIONS, GEMM_MAX_POSITIONS, PATCH_MATRIX_MAX_ENTRIES, tapPlan } from '../../../../model/autodiff/ops/conv-taps.js';
import { windowGeometry } from '../../../../model/autodiff/ops/window.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import type { GraphIR } from '../../../../model/onnx/ir.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { f32, output, pseudoRandom, run, session, type Feed } from '../../../support/model/ort.js';

interface LoweringCase {
  readonly name: string;
  readonly x: readonly number[];
  readonly w: readonly number[];
  readonly bias?: boolean;
  readonly attributes: AttributeMap;
  readonly lowering: 'gemm' | 'depthwise' | 'conv';
}

const cases: LoweringCase[] = [
  { name: '3x3 pad 1 on 1x1 (ResNet layer4 at 32x32)', x: [3, 6, 1, 1], w: [5, 6, 3, 3], bias: true, attributes: { pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: '3x3 pad 1 on 2x2', x: [2, 4, 2, 2], w: [3, 4, 3, 3], attributes: { pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: '3x3 stride 2 pad 1, 4x4 -> 2x2', x: [2, 3, 4, 4], w: [4, 3, 3, 3], bias: true, attributes: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: '1x1 stride 2 downsample, 3x4 -> 2x2', x: [2, 5, 3, 4], w: [2, 5, 1, 1], attributes: { strides: attr.ints([2, 2]) }, lowering: 'gemm' },
  { name: 'asymmetric kernel and pads', x: [2, 2, 3, 1], w: [3, 2, 3, 2], bias: true, attributes: { pads: attr.ints([0, 1, 0, 0]) }, lowering: 'gemm' },
  { name: '1-D, 4 positions', x: [2, 3, 4], w: [2, 3, 3], bias: true, attributes: { pads: attr.ints([1, 1]) }, lowering: 'gemm' },
  { name: 'depthwise 3x3 pad 1 on 1x1', x: [2, 7, 1, 1], w: [7, 1, 3, 3], bias: true, attributes: { group: attr.int(7), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'depthwise 3x3 stride 2 pad 1, 4x3 -> 2x2', x: [2, 4, 4, 3], w: [4, 1, 3, 3], attributes: { group: attr.int(4), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'depthwise 5x5 pad 2 on 2x2', x: [2, 3, 2, 2], w: [3, 1, 5, 5], attributes: { group: attr.int(3), pads: attr.ints([2, 2, 2, 2]) }, lowering: 'depthwise' },
  { name: 'depthwise 1-D stride 2', x: [2, 3, 5], w: [3, 1, 3], bias: true, attributes: { group: attr.int(3), strides: attr.ints([2]) }, lowering: 'depthwise' },
  { name: 'depthwise 3x3 pad 1 on 2x2 (frame padded on both sides)', x: [2, 3, 2, 2], w: [3, 1, 3, 3], bias: true, attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'depthwise stride (2, 1), 4x2 -> 2x2', x: [2, 3, 4, 2], w: [3, 1, 3, 3], attributes: { group: attr.int(3), strides: attr.ints([2, 1]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'stride (1, 2), 2x4 -> 2x2', x: [2, 3, 2, 4], w: [2, 3, 3, 3], attributes: { strides: attr.ints([1, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: '3x3 stride 2 pad 1, 5x5 -> 3x3 (9 positions)', x: [2, 3, 5, 5], w: [4, 3, 3, 3], bias: true, attributes: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: '3x3 pad 1 on 4x4 (16 positions, ResNet-18 layer2 at 32x32)', x: [2, 3, 4, 4], w: [2, 3, 3, 3], attributes: { pads: attr.ints([1, 1, 1, 1]) }, lowering: 'gemm' },
  { name: 'plain Conv above the threshold (5x4 output)', x: [2, 3, 5, 4], w: [4, 3, 3, 3], attributes: { pads: attr.ints([1, 1, 1, 1]) }, lowering: 'conv' },
  { name: 'depthwise 3x3 pad 1, 8x8 -> 8x8 (64 positions, the threshold)', x: [2, 3, 8, 8], w: [3, 1, 3, 3], bias: true, attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'depthwise 3x3 stride 2 pad 1, 8x8 -> 4x4', x: [2, 2, 8, 8], w: [2, 1, 3, 3], attributes: { group: attr.int(2), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'depthwise' },
  { name: 'depthwise 3x3 stride 2 pad 1, 16x16 -> 8x8 (more than 64 input cells) stays plain', x: [2, 2, 16, 16], w: [2, 1, 3, 3], attributes: { group: attr.int(2), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'conv' },
  { name: 'depthwise above its threshold (9x9 output) stays plain', x: [2, 3, 9, 9], w: [3, 1, 3, 3], attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'conv' },
  { name: 'depthwise multiplier 2 stays plain', x: [2, 2, 2, 2], w: [4, 1, 3, 3], attributes: { group: attr.int(2), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'conv' },
  { name: 'grouped (not depthwise) stays plain', x: [2, 4, 2, 2], w: [4, 2, 3, 3], attributes: { group: attr.int(2), pads: attr.ints([1, 1, 1, 1]) }, lowering: 'conv' },
];

function convGraph(c: LoweringCase): { graph: GraphIR; feeds: Record<string, Feed> } {
  const b = new GraphBuilder('conv');
  const feeds: Record<string, Feed> = {};
  const shapes: [string, readonly number[]][] = [['x', c.x], ['w', c.w], ...(c.bias === true ? [['b', [c.w[0] as number]] as [string, number[]]] : [])];
  shapes.forEach(([name, dims], i) => {
    b.addInput(name, DataType.FLOAT, dims);
    feeds[name] = f32(pseudoRandom(dims.reduce((n, d) => n * d, 1), 31 + i), dims);
  });
  b.appendNode('Conv', shapes.map(([name]) => name), ['y'], c.attributes);
  b.addOutput('y', DataType.FLOAT, undefined);
  return { graph: b.build(), feeds };
}

describe('lowered Conv forms compute what ONNX Runtime Conv computes', () => {
  for (const c of cases) {
    it(`${c.name}: ${c.lowering}`, async () => {
      const { graph, feeds } = convGraph(c);
      const reference = output(await run(await session(encodeModel(modelFromGraph(graph))), feeds), 'y');
      const training = buildGradientGraph(graph, Object.keys(feeds));
      const ops = new Set(training.nodes.map((n) => n.opType));
      expect(ops.has('Conv')).toBe(c.lowering === 'conv');
      expect(ops.has('ConvTranspose')).toBe(c.lowering === 'conv');
      // Both lowered forms end in GEMMs; depthwise builds its per-channel matrices from a channel matrix.
      expect(ops.has('Gemm')).toBe(c.lowering !== 'conv');
      expect(training.initializers.some((t) => t.name.startsWith('channel_matrix'))).toBe(c.lowering === 'depthwise');
      const zeros = f32(new Float32Array(reference.data.length), reference.dims);
      const lowered = output(await run(await session(encodeModel(modelFromGraph(training))), { ...feeds, 'grad.y': zeros }), 'y');
      expect(lowered.dims).toEqual(reference.dims);
      const worst = Math.max(...reference.data.map((v, i) => Math.abs(v - (lowered.data[i] as number))));
      expect(worst).toBeLessThan(1e-5);
      expect(Math.max(...reference.data.map(Math.abs))).toBeGreaterThan(0.1);
    });
  }
});

describe('tap plan', () => {
  const geometry = (input: [number, number], kernel: [number, number], attributes: AttributeMap) =>
    windowGeometry({ name: 'c', opType: 'Conv', domain: '', inputs: [], outputs: [], attributes }, input, kernel);

  it('a 3x3 pad-1 kernel on a 1x1 input reads real values with its centre tap only', () => {
    const plan = tapPlan(geometry([1, 1], [3, 3], { pads: attr.ints([1, 1, 1, 1]) }));
    expect(plan.taps).toEqual([{ row: 1, col: 1 }]);
    expect(plan.wholeKernel).toBe(false);
  });

  it('stride 2 from 2x2 to 1x1 drops the first row and column of taps', () => {
    const plan = tapPlan(geometry([2, 2], [3, 3], { pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]) }));
    expect(plan.rows).toEqual([1, 2]);
    expect(plan.cols).toEqual([1, 2]);
  });

  it('a 2x2 output with pad 1 keeps the whole kernel', () => {
    const plan = tapPlan(geometry([2, 2], [3, 3], { pads: attr.ints([1, 1, 1, 1]) }));
    expect(plan.wholeKernel).toBe(true);
    expect(plan.taps).toHaveLength(9);
  });

  it('lowers group-1 Conv at up to GEMM_MAX_POSITIONS positions and depthwise Conv at up to DEPTHWISE_MAX_POSITIONS on at most DEPTHWISE_MAX_CELLS input cells, nothing else', () => {
    const small = geometry([2, 2], [3, 3], { pads: attr.ints([1, 1, 1, 1]) });
    const medium = geometry([4, 4], [3, 3], { pads: attr.ints([1, 1, 1, 1]) });
    const large = geometry([5, 4], [3, 3], { pads: attr.ints([1, 1, 1, 1]) });
    const huge = geometry([9, 9], [3, 3], { pads: attr.ints([1, 1, 1, 1]) });
    expect([GEMM_MAX_POSITIONS, DEPTHWISE_MAX_POSITIONS, DEPTHWISE_MAX_CELLS]).toEqual([16, 64, 64]);
    expect(convLowering([-1, 8, 2, 2], [8, 8, 3, 3], 1, small)).toBe('gemm');
    expect(convLowering([-1, 8, 2, 2], [8, 1, 3, 3], 8, small)).toBe('depthwise');
    expect(convLowering([-1, 8, 4, 4], [8, 8, 3, 3], 1, medium)).toBe('gemm');
    expect(convLowering([-1, 8, 4, 4], [8, 1, 3, 3], 8, medium)).toBe('depthwise');
    expect(convLowering([-1, 8, 9, 9], [8, 1, 3, 3], 8, huge)).toBe('conv');
    const strided = geometry([16, 16], [3, 3], { pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]) });
    expect(convLowering([-1, 8, 16, 16], [8, 1, 3, 3], 8, strided)).toBe('conv');
    expect(convLowering([-1, 8, 5, 4], [8, 8, 3, 3], 1, large)).toBe('conv');
    expect(convLowering([-1, 8, 2, 2], [16, 1, 3, 3], 8, small)).toBe('conv');
  });

  it('keeps ORT Conv where the patch matrix would pass PATCH_MATRIX_MAX_ENTRIES, and for channels that scale with the batch', () => {
    // A 64x64 kernel over a 64x64 input: one position, but a 4096 x 4096 patch matrix.
    const whole = geometry([64, 64], [64, 64], {});
    expect(64 * 64 * 64 * 64).toBeGreaterThan(PATCH_MATRIX_MAX_ENTRIES);
    expect(convLowering([-1, 2, 64, 64], [4, 2, 64, 64], 1, whole)).toBe('conv');
    const justUnder = geometry([32, 32], [32, 32], {});
    expect(32 * 32 * 32 * 32).toBeLessThanOrEqual(PATCH_MATRIX_MAX_ENTRIES);
    expect(convLowering([-1, 2, 32, 32], [4, 2, 32, 32], 1, justUnder)).toBe('gemm');
    expect(convLowering([-1, -2, 2, 2], [8, 8, 3, 3], 1, geometry([2, 2], [3, 3], { pads: attr.ints([1, 1, 1, 1]) }))).toBe('conv');
  });
});

describe('the lowered forms take their shortcuts (each one is the difference between fast and slow, not right and wrong)', () => {
  /** Op types and initializer names of the training graph of one Conv. */
  function emitted(c: Omit<LoweringCase, 'name' | 'lowering'>): { ops: string[]; initializers: string[] } {
    const { graph, feeds } = convGraph({ ...c, name: 'shape', lowering: 'gemm' });
    const training = buildGradientGraph(graph, Object.keys(feeds));
    return { ops: training.nodes.map((n) => n.opType), initializers: training.initializers.map((t) => t.name) };
  }
  const named = (names: string[], base: string): boolean => names.some((name) => name.startsWith(base));

  it('a 1x1 stride-1 Conv on a 2x2 input reads its columns from the input: no patch matrix', () => {
    const { initializers } = emitted({ x: [2, 6, 2, 2], w: [4, 6, 1, 1], attributes: {} });
    expect(named(initializers, 'patch_matrix')).toBe(false);
    expect(named(initializers, 'tap_selection')).toBe(false);
  });

  it("a 3x3 pad-1 Conv on a 1x1 input keeps the centre tap (one selection product) and reads the input as it is", () => {
    const { ops, initializers } = emitted({ x: [2, 6, 1, 1], w: [4, 6, 3, 3], attributes: { pads: attr.ints([1, 1, 1, 1]) } });
    expect(named(initializers, 'tap_selection')).toBe(true);
    expect(named(initializers, 'patch_matrix')).toBe(false);
    expect(ops).not.toContain('Pad');
    expect(ops).not.toContain('Transpose');
  });

  it('a 3x3 pad-1 Conv on a 2x2 input uses every tap: a patch matrix and no tap selection', () => {
    const { initializers } = emitted({ x: [2, 6, 2, 2], w: [4, 6, 3, 3], attributes: { pads: attr.ints([1, 1, 1, 1]) } });
    expect(named(initializers, 'patch_matrix')).toBe(true);
    expect(named(initializers, 'tap_selection')).toBe(false);
  });

  it('a depthwise Conv is per-channel matrix products: no Pad, Slice or Sum, and a tap selection only where taps are dead', () => {
    const centre = emitted({ x: [2, 6, 1, 1], w: [6, 1, 3, 3], attributes: { group: attr.int(6), pads: attr.ints([1, 1, 1, 1]) } });
    const whole = emitted({ x: [2, 3, 4, 4], w: [3, 1, 3, 3], attributes: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) } });
    for (const { ops, initializers } of [centre, whole]) {
      for (const op of ['Pad', 'Slice', 'Sum', 'Conv', 'ConvTranspose']) expect(ops).not.toContain(op);
      expect(initializers.filter((name) => name.startsWith('channel_matrix'))).toHaveLength(1);
    }
    expect(named(centre.initializers, 'tap_selection')).toBe(true);
    expect(named(whole.initializers, 'tap_selection')).toBe(false);
  });

  it('a 3x3 stride-2 pad-1 Conv from 2x2 to 1x1 (four live taps, one position) moves no axis', () => {
    const { ops, initializers } = emitted({ x: [2, 6, 2, 2], w: [4, 6, 3, 3], attributes: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } });
    expect(named(initializers, 'patch_matrix')).toBe(true);
    expect(ops).not.toContain('Transpose');
  });
});
