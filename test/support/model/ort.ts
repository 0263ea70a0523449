/** onnxruntime-node helpers for model/ tests: sessions from bytes, typed feeds, plain outputs. */
import ort from 'onnxruntime-node';

export type Feed =
  | { readonly type: 'float32'; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'float64'; readonly data: Float64Array; readonly dims: readonly number[] }
  | { readonly type: 'int64'; readonly data: BigInt64Array; readonly dims: readonly number[] };

export const f32 = (data: ArrayLike<number>, dims: readonly number[]): Feed => ({ type: 'float32', data: Float32Array.from(data), dims });
export const f64 = (data: ArrayLike<number>, dims: readonly number[]): Feed => ({ type: 'float64', data: Float64Array.from(data), dims });
export const i64 = (data: ArrayLike<number>, dims: readonly number[]): Feed => ({
  type: 'int64',
  data: BigInt64Array.from(Array.from(data, (v) => BigInt(v))),
  dims,
});

export async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export interface Output {
  readonly data: Float64Array;
  readonly dims: readonly number[];
}

/** Runs a session; every numeric output comes back as float64 values with its dims. */
export async function run(s: ort.InferenceSession, feeds: Readonly<Record<string, Feed>>): Promise<Record<string, Output>> {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, feed] of Object.entries(feeds)) tensors[name] = new ort.Tensor(feed.type, feed.data, [...feed.dims]);
  const results = await s.run(tensors);
  const out: Record<string, Output> = {};
  for (const [name, tensor] of Object.entries(results)) {
    const data = tensor.data as ArrayLike<number | bigint>;
    out[name] = { data: Float64Array.from(Array.from(data, (v) => Number(v))), dims: [...tensor.dims] };
  }
  return out;
}

export function output(results: Record<string, Output>, name: string): Output {
  const value = results[name];
  if (value === undefined) throw new Error(`missing output '${name}'; got ${Object.keys(results).join(', ')}`);
  return value;
}

/** Deterministic pseudo-random values in [lo, hi) for test inputs (a small LCG; not for weights). */
export function pseudoRandom(count: number, seed: number, lo = -1, hi = 1): number[] {
  let state = seed >>> 0 || 1;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return lo + ((state >>> 8) / 0x1000000) * (hi - lo);
  });
}
