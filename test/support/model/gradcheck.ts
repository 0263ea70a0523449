/**
 * Gradient checking against central finite differences. The gradient graph that model/ derives runs in
 * ONNX Runtime for the analytic gradient; for the differences ONNX Runtime runs the forward part of that
 * same graph, i.e. the training form of the ops (BatchNorm on batch statistics), which is the function
 * being differentiated. Scalar objective: L = sum(output * R) with fixed pseudo-random weights R.
 */
import type { GraphIR } from '../../../model/onnx/ir.js';
import { buildGradientGraph } from '../../../model/autodiff/gradient-graph.js';
import { modelFromGraph } from '../../../model/graph/model.js';
import { encodeModel } from '../../../model/onnx/codec.js';
import { DataType } from '../../../model/onnx/schema.js';
import { output, pseudoRandom, run, session, type Feed } from './ort.js';

export interface GradcheckOptions {
  /** Inputs to differentiate with respect to. */
  readonly wrt: readonly string[];
  /** Finite-difference step. */
  readonly step: number;
  readonly atol: number;
  readonly rtol: number;
  /** Check at most this many coordinates per input (evenly spread); default all. */
  readonly maxCoordinates?: number;
  /** Opset of the forward-only model (default fedgate's 17; 18 for ops whose axes became inputs). */
  readonly opset?: number;
}

export interface Mismatch {
  readonly input: string;
  readonly index: number;
  readonly analytic: number;
  readonly numeric: number;
}

export interface GradcheckResult {
  readonly checked: number;
  readonly mismatches: readonly Mismatch[];
  /** Largest |analytic| seen: guards against a check that only ever compares zeros. */
  readonly largestGradient: number;
}

function withValues(feed: Feed, values: Float64Array): Feed {
  if (feed.type === 'float32') return { type: 'float32', data: Float32Array.from(values), dims: feed.dims };
  if (feed.type === 'float64') return { type: 'float64', data: values, dims: feed.dims };
  throw new Error('cannot perturb an int64 input');
}

export async function gradcheck(forward: GraphIR, feeds: Readonly<Record<string, Feed>>, options: GradcheckOptions): Promise<GradcheckResult> {
  const outputInfo = forward.outputs[0];
  if (outputInfo === undefined || forward.outputs.length !== 1) throw new Error('gradcheck needs a single-output graph');
  const gradientSession = await session(encodeModel(modelFromGraph(buildGradientGraph(forward, options.wrt))));
  const forwardOnly = await session(encodeModel(modelFromGraph(forward, options.opset === undefined ? {} : { opset: options.opset })));
  const base = output(await run(forwardOnly, feeds), outputInfo.name);
  const weights = pseudoRandom(base.data.length, 7, -1, 1);
  const objective = (values: Float64Array): number => values.reduce((sum, v, i) => sum + v * (weights[i] as number), 0);
  const outputType = outputInfo.elemType === DataType.DOUBLE ? 'float64' : 'float32';
  const seed: Feed =
    outputType === 'float64'
      ? { type: 'float64', data: Float64Array.from(weights), dims: base.dims }
      : { type: 'float32', data: Float32Array.from(weights), dims: base.dims };
  const seedName = `grad.${outputInfo.name}`;
  const analytic = await run(gradientSession, { ...feeds, [seedName]: seed });
  const evaluate = async (perturbed: Readonly<Record<string, Feed>>): Promise<number> =>
    objective(output(await run(gradientSession, { ...perturbed, [seedName]: seed }), outputInfo.name).data);

  const mismatches: Mismatch[] = [];
  let checked = 0;
  let largestGradient = 0;
  for (const name of options.wrt) {
    const feed = feeds[name];
    if (feed === undefined) throw new Error(`no feed for '${name}'`);
    const values = Float64Array.from(feed.data as ArrayLike<number>);
    const grad = output(analytic, `grad.${name}`).data;
    const stride = Math.max(1, Math.floor(values.length / (options.maxCoordinates ?? values.length)));
    for (let index = 0; index < values.length; index += stride) {
      const original = values[index] as number;
      values[index] = original + options.step;
      const plus = await evaluate({ ...feeds, [name]: withValues(feed, values) });
      values[index] = original - options.step;
      const minus = await evaluate({ ...feeds, [name]: withValues(feed, values) });
      values[index] = original;
      const numeric = (plus - minus) / (2 * options.step);
      const a = grad[index] as number;
      largestGradient = Math.max(largestGradient, Math.abs(a));
      checked++;
      if (!(Math.abs(a - numeric) <= options.atol + options.rtol * Math.max(Math.abs(a), Math.abs(numeric)))) {
        mismatches.push({ input: name, index, analytic: a, numeric });
      }
    }
  }
  return { checked, mismatches, largestGradient };
}
