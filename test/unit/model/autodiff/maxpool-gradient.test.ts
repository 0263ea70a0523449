/**
 * MaxPool's gradient in each of its three emitted forms (model/autodiff/ops/pool.ts): windows that tile
 * the input (SpaceToDepth + first maximum + MaxUnpool, forward without Indices), other non-overlapping
 * windows (Indices + MaxUnpool) and overlapping ones (Indices + ScatterElements add), in float32 and
 * float64. Inputs are drawn from a few values so that windows hold ties: the gradient must go to the
 * first maximum in row-major window order (PyTorch's and ONNX's Indices rule), which finite differences
 * cannot check, so the expected gradient is computed here from the ONNX definition, window by window.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, attr, type AttributeMap } from '../../../../model/graph/builder.js';
import { buildGradientGraph } from '../../../../model/autodiff/gradient-graph.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import type { DimIR, GraphIR } from '../../../../model/onnx/ir.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { f32, f64, output, pseudoRandom, run, session } from '../../../support/model/ort.js';

interface PoolCase {
  readonly name: string;
  /** [N, C, H, W] or [N, C, L]. */
  readonly shape: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly pads?: readonly number[];
  readonly dilations?: readonly number[];
  readonly ceil?: boolean;
  /** Op types the float32 gradient graph must contain, and must not. */
  readonly uses: readonly string[];
  readonly avoids: readonly string[];
}

const cases: PoolCase[] = [
  { name: '2x2 stride 2 (tiling: first maximum found by SpaceToDepth)', shape: [2, 3, 4, 6], kernel: [2, 2], strides: [2, 2], uses: ['SpaceToDepth', 'MaxUnpool'], avoids: ['ScatterElements'] },
  { name: '3x3 stride 3 (tiling, k = 3)', shape: [2, 2, 6, 9], kernel: [3, 3], strides: [3, 3], uses: ['SpaceToDepth', 'MaxUnpool'], avoids: ['ScatterElements'] },
  { name: '2x2 stride 2 on 5x7 (rows and columns left over: not tiling)', shape: [2, 2, 5, 7], kernel: [2, 2], strides: [2, 2], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x3 stride 2x3 (non-square windows)', shape: [2, 3, 6, 9], kernel: [2, 3], strides: [2, 3], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 2 pad 1 (padding, windows still disjoint)', shape: [1, 2, 5, 5], kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 3 (gaps between windows)', shape: [2, 2, 7, 8], kernel: [2, 2], strides: [3, 3], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 2 ceil_mode on 5x5 (a last window past the input: scatter)', shape: [2, 2, 5, 5], kernel: [2, 2], strides: [2, 2], ceil: true, uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: '2x2 stride 2 pad 1 on 4x4 (sizes divide, but padding: not tiling)', shape: [1, 2, 4, 4], kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 2 on 5x4 (height left over only)', shape: [2, 2, 5, 4], kernel: [2, 2], strides: [2, 2], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 2 on 4x5 (width left over only)', shape: [2, 2, 4, 5], kernel: [2, 2], strides: [2, 2], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x3 stride 2 (windows overlap along the width)', shape: [2, 2, 4, 6], kernel: [2, 3], strides: [2, 2], uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: '2x2 stride 1x2 (windows overlap along the height)', shape: [2, 2, 4, 4], kernel: [2, 2], strides: [1, 2], uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: '2x2 stride 2x1 (windows overlap along the width)', shape: [2, 2, 4, 4], kernel: [2, 2], strides: [2, 1], uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: '2x2 stride 2 pads top and bottom only (windows shifted by a row: not tiling)', shape: [1, 2, 4, 4], kernel: [2, 2], strides: [2, 2], pads: [1, 0, 1, 0], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '2x2 stride 2 dilation 2x1 (dilated rows: not tiling)', shape: [2, 2, 6, 4], kernel: [2, 2], strides: [2, 2], dilations: [2, 1], uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: '2x2 stride 2 dilation 1x2 (dilated columns: not tiling)', shape: [2, 2, 4, 6], kernel: [2, 2], strides: [2, 2], dilations: [1, 2], uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: 'MaxPool1d 2 stride 2 pad 1', shape: [2, 3, 6], kernel: [2], strides: [2], pads: [1, 1], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: 'MaxPool1d 2 stride 2', shape: [2, 3, 8], kernel: [2], strides: [2], uses: ['MaxUnpool'], avoids: ['SpaceToDepth', 'ScatterElements'] },
  { name: '3x3 stride 2 pad 1 ceil_mode (overlapping: scatter-add)', shape: [2, 2, 6, 6], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true, uses: ['ScatterElements'], avoids: ['MaxUnpool', 'SpaceToDepth'] },
  { name: 'MaxPool1d 3 stride 2 (overlapping)', shape: [2, 2, 9], kernel: [3], strides: [2], uses: ['ScatterElements'], avoids: ['MaxUnpool'] },
];

/** Output size of one axis, as the ONNX spec (and ONNX Runtime) compute it. */
function outputSize(size: number, span: number, stride: number, begin: number, end: number, ceil: boolean): number {
  const reach = size + begin + end - span;
  let out = (ceil ? Math.ceil(reach / stride) : Math.floor(reach / stride)) + 1;
  if (ceil && (out - 1) * stride >= size + begin) out -= 1;
  return out;
}

interface Geometry {
  readonly n: number;
  readonly c: number;
  readonly input: readonly [number, number];
  readonly output: readonly [number, number];
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilations: readonly [number, number];
  readonly begin: readonly [number, number];
}

function geometryOf(c: PoolCase): Geometry {
  const twoD = c.shape.length === 4;
  const input: [number, number] = twoD ? [c.shape[2] as number, c.shape[3] as number] : [1, c.shape[2] as number];
  const kernel: [number, number] = twoD ? [c.kernel[0] as number, c.kernel[1] as number] : [1, c.kernel[0] as number];
  const strides: [number, number] = twoD ? [c.strides[0] as number, c.strides[1] as number] : [1, c.strides[0] as number];
  const pads = c.pads ?? (twoD ? [0, 0, 0, 0] : [0, 0]);
  const begin: [number, number] = twoD ? [pads[0] as number, pads[1] as number] : [0, pads[0] as number];
  const end: [number, number] = twoD ? [pads[2] as number, pads[3] as number] : [0, pads[1] as number];
  const dilations: [number, number] = twoD ? [c.dilations?.[0] ?? 1, c.dilations?.[1] ?? 1] : [1, c.dilations?.[0] ?? 1];
  const output: [number, number] = [0, 1].map((i) =>
    outputSize(input[i] as number, ((kernel[i] as number) - 1) * (dilations[i] as number) + 1, strides[i] as number, begin[i] as number, end[i] as number, c.ceil === true),
  ) as [number, number];
  return { n: c.shape[0] as number, c: c.shape[1] as number, input, output, kernel, strides, dilations, begin };
}

/** dX by the definition: each window's dY goes to its first maximum (row-major, padding excluded; dilated windows skip cells). */
function expectedGradient(g: Geometry, x: readonly number[], dy: readonly number[]): number[] {
  const [h, w] = g.input;
  const [oh, ow] = g.output;
  const dx = new Array<number>(x.length).fill(0);
  for (let image = 0; image < g.n * g.c; image++) {
    for (let p = 0; p < oh; p++) {
      for (let q = 0; q < ow; q++) {
        let best = -1;
        for (let i = 0; i < g.kernel[0]; i++) {
          for (let j = 0; j < g.kernel[1]; j++) {
            const row = p * g.strides[0] - g.begin[0] + i * g.dilations[0];
            const col = q * g.strides[1] - g.begin[1] + j * g.dilations[1];
            if (row < 0 || row >= h || col < 0 || col >= w) continue;
            const at = (image * h + row) * w + col;
            if (best < 0 || (x[at] as number) > (x[best] as number)) best = at;
          }
        }
        dx[best] = (dx[best] as number) + (dy[(image * oh + p) * ow + q] as number);
      }
    }
  }
  return dx;
}

function poolGraph(c: PoolCase, elemType: number, batchDim: DimIR): GraphIR {
  const b = new GraphBuilder(`maxpool_${c.shape.join('x')}`);
  b.addInput('x', elemType as never, [batchDim, ...c.shape.slice(1)]);
  const attributes: AttributeMap = {
    kernel_shape: attr.ints(c.kernel),
    strides: attr.ints(c.strides),
    ...(c.pads === undefined ? {} : { pads: attr.ints(c.pads) }),
    ...(c.dilations === undefined ? {} : { dilations: attr.ints(c.dilations) }),
    ...(c.ceil === true ? { ceil_mode: attr.int(1) } : {}),
  };
  b.appendNode('MaxPool', ['x'], ['y'], attributes);
  b.addOutput('y', elemType as never, undefined);
  return b.build();
}

async function gradientOf(
  c: PoolCase,
  precision: 'float32' | 'float64',
  batchDim: DimIR,
): Promise<{ dx: number[]; expected: number[]; ops: string[]; pools: string[][] }> {
  const elemType = precision === 'float32' ? DataType.FLOAT : DataType.DOUBLE;
  const graph = buildGradientGraph(poolGraph(c, elemType, batchDim), ['x']);
  const g = geometryOf(c);
  const count = c.shape.reduce((n, d) => n * d, 1);
  // Few distinct values: most windows hold ties, some of them at the maximum.
  const x = pseudoRandom(count, 17, 0, 3).map((v) => Math.floor(v));
  const outDims = c.shape.length === 4 ? [g.n, g.c, g.output[0], g.output[1]] : [g.n, g.c, g.output[1]];
  const dy = pseudoRandom(outDims.reduce((n, d) => n * d, 1), 23, -1, 1).map((v) => Math.round(v * 64) / 64 + 0); // + 0: no -0
  const feed = precision === 'float32' ? f32 : f64;
  const results = await run(await session(encodeModel(modelFromGraph(graph))), { x: feed(x, c.shape), 'grad.y': feed(dy, outDims) });
  return {
    dx: Array.from(output(results, 'grad.x').data),
    expected: expectedGradient(g, x, dy),
    ops: graph.nodes.map((n) => n.opType),
    pools: graph.nodes.filter((n) => n.opType === 'MaxPool').map((n) => [...n.outputs]),
  };
}

describe('MaxPool gradient: every window passes dY to its first maximum', () => {
  for (const c of cases) {
    for (const precision of ['float32', 'float64'] as const) {
      it(`${c.name}, ${precision}`, async () => {
        const { dx, expected, ops, pools } = await gradientOf(c, precision, c.shape[0] as number);
        expect(dx).toEqual(expected);
        expect(expected.some((v) => v !== 0)).toBe(true);
        if (precision === 'float32') {
          for (const op of c.uses) expect(ops).toContain(op);
          for (const op of c.avoids) expect(ops).not.toContain(op);
        }
        // Only the tiling form runs the forward MaxPool without Indices (ONNX Runtime's fast kernel).
        const indices = pools.filter((outputs) => outputs.length > 1 && outputs[1] !== '').length;
        expect(indices).toBe(ops.includes('SpaceToDepth') ? 0 : 1);
      });
    }
  }

  it('the tiling form works with a symbolic batch dimension (the flat indices take N from the run-time shape)', async () => {
    const c = cases[0] as PoolCase;
    const { dx, expected } = await gradientOf(c, 'float32', 'batch');
    expect(dx).toEqual(expected);
  });

  it('the test inputs do hold ties at window maxima (else first-maximum order would go unchecked)', () => {
    const c = cases[0] as PoolCase;
    const g = geometryOf(c);
    const x = pseudoRandom(c.shape.reduce((n, d) => n * d, 1), 17, 0, 3).map((v) => Math.floor(v));
    let tied = 0;
    for (let image = 0; image < g.n * g.c; image++) {
      for (let p = 0; p < g.output[0]; p++) {
        for (let q = 0; q < g.output[1]; q++) {
          const cells = [0, 1, 2, 3].map((t) => x[(image * g.input[0] + 2 * p + (t >> 1)) * g.input[1] + 2 * q + (t & 1)] as number);
          const max = Math.max(...cells);
          if (cells.filter((v) => v === max).length > 1) tied++;
        }
      }
    }
    expect(tied).toBeGreaterThan(5);
  });

  it("a model that reads MaxPool's Indices output keeps the Indices form (the tiling form has none)", () => {
    const b = new GraphBuilder('maxpool_indices_used');
    b.addInput('x', DataType.FLOAT, [2, 2, 4, 4]);
    b.appendNode('MaxPool', ['x'], ['y', 'i'], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    b.appendNode('Cast', ['i'], ['fi'], { to: attr.int(DataType.FLOAT) });
    b.appendNode('Add', ['y', 'fi'], ['z'], {});
    b.addOutput('z', DataType.FLOAT, undefined);
    const ops = buildGradientGraph(b.build(), ['x']).nodes.map((n) => n.opType);
    expect(ops).toContain('MaxUnpool');
    expect(ops).not.toContain('SpaceToDepth');
  });
});
