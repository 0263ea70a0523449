/**
 * One op in a tiny graph, differentiated by fedgate and checked against central finite differences
 * (gradcheck.ts): the table-driven form the op-gradient tests share.
 */
import { expect } from 'vitest';
import { GraphBuilder, type AttributeMap } from '../../../model/graph/builder.js';
import type { GraphIR } from '../../../model/onnx/ir.js';
import { DataType } from '../../../model/onnx/schema.js';
import { gradcheck } from './gradcheck.js';
import { f32, f64, pseudoRandom, type Feed } from './ort.js';

export interface OpCase {
  readonly name: string;
  readonly op: string;
  /** Differentiated inputs, in order, with their shapes. */
  readonly inputs: Readonly<Record<string, readonly number[]>>;
  readonly attributes?: AttributeMap;
  /** float32 where ONNX Runtime's CPU kernel has no double (Conv, ConvTranspose, pooling, Pad reflect). */
  readonly precision?: 'float64' | 'float32';
  /** Value range of the inputs (e.g. away from a kink). */
  readonly range?: readonly [number, number];
  readonly values?: Readonly<Record<string, readonly number[]>>;
  /** Constant inputs after the differentiated ones (pads, bounds); an empty name skips an optional input. */
  readonly constants?: readonly ({ readonly dataType: number; readonly dims: readonly number[]; readonly values: readonly number[] } | null)[];
}

function graphFor(c: OpCase): { graph: GraphIR; feeds: Record<string, Feed> } {
  const elemType = c.precision === 'float32' ? DataType.FLOAT : DataType.DOUBLE;
  const b = new GraphBuilder(c.name.replace(/[^A-Za-z0-9_]/g, '_'));
  const feeds: Record<string, Feed> = {};
  let seed = 11;
  for (const [name, dims] of Object.entries(c.inputs)) {
    b.addInput(name, elemType, dims);
    const count = dims.reduce((n, d) => n * d, 1);
    const values = c.values?.[name] ?? pseudoRandom(count, seed++, c.range?.[0] ?? -1, c.range?.[1] ?? 1);
    feeds[name] = elemType === DataType.FLOAT ? f32(values, dims) : f64(values, dims);
  }
  const constants = (c.constants ?? []).map((k) => (k === null ? '' : b.constant(k.dataType as never, k.dims, k.values)));
  b.appendNode(c.op, [...Object.keys(c.inputs), ...constants], ['y'], c.attributes ?? {});
  b.addOutput('y', elemType, undefined);
  return { graph: b.build(), feeds };
}

/** Fails the test unless fedgate's gradient of every input matches central differences. */
export async function expectOpGradientsMatch(c: OpCase): Promise<void> {
  const { graph, feeds } = graphFor(c);
  const float32 = c.precision === 'float32';
  const result = await gradcheck(graph, feeds, {
    wrt: Object.keys(c.inputs),
    step: float32 ? 1e-2 : 1e-6,
    atol: float32 ? 2e-3 : 1e-7,
    rtol: float32 ? 1e-2 : 1e-6,
  });
  expect(result.mismatches).toEqual([]);
  expect(result.checked).toBeGreaterThan(0);
  expect(result.largestGradient).toBeGreaterThan(1e-3);
}
