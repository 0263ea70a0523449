/**
 * Each zoo model's train step against central finite differences of the mean cross-entropy. The
 * analytic gradient is read off the real trainStep graph (plain SGD with learning rate 1:
 * g = w - w'); the differences run the zoo's forward graph in ONNX Runtime, in float64 for the dense
 * models and in float32 for the CNN (ONNX Runtime's Conv is float32-only), on a spread of coordinates.
 *
 * float32 forces a step large enough that a perturbation can push a ReLU input or a max-pool window
 * across its kink. Such coordinates are recognised by comparing the differences at steps h, h/2 and h/4
 * (a smooth neighbourhood gives the same slope) and excluded; the test requires most coordinates to be
 * compared, so a wrong rule cannot hide behind the filter.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan } from '../../../../model/index.js';
import { GraphBuilder } from '../../../../model/graph/builder.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { buildZooModel } from '../../../../model/zoo/zoo.js';
import type { ForwardModel } from '../../../../model/train/forward-model.js';
import { f32, f64, i64, output, pseudoRandom, run, session, type Feed } from '../../../support/model/ort.js';
import { crossEntropy } from '../../../support/model/reference.js';
import { taskFor, type ZooSpec } from '../../../support/model/tasks.js';


/** The zoo model's forward graph on its own: input and parameters in, logits out. */
function forwardGraph(forward: ForwardModel, elemType: typeof DataType.FLOAT | typeof DataType.DOUBLE): Uint8Array {
  const b = new GraphBuilder('forward');
  b.addInput(forward.input, elemType, ['batch', ...forward.inputShape]);
  for (const p of forward.parameters) b.addInput(p.name, elemType, p.shape);
  for (const tensor of forward.constants) b.addInitializer(tensor);
  for (const node of forward.nodes) b.copyNode(node);
  b.addOutput(forward.logits, elemType, ['batch', forward.classes]);
  return encodeModel(modelFromGraph(b.build()));
}

interface CheckOptions {
  readonly precision: 'float64' | 'float32';
  readonly step: number;
  readonly atol: number;
  readonly rtol: number;
  readonly coordinatesPerTensor: number;
  /** float32 only: skip coordinates whose differences at h, h/2 and h/4 spread wider than this. */
  readonly smoothness?: number;
}

async function checkZooModel(spec: ZooSpec, batchSize: number, options: CheckOptions): Promise<{ checked: number; skipped: number }> {
  const plan = buildTrainingPlan(taskFor(spec, { optimizer: { kind: 'sgd', learningRate: 1 }, seed: 3 }));
  const forward = buildZooModel(spec, 3);
  const exampleSize = spec.inputShape.reduce((n, d) => n * d, 1);
  const x = pseudoRandom(batchSize * exampleSize, 41, 0, 1).map(Math.fround);
  const labels = Array.from({ length: batchSize }, (_, i) => i % spec.classes);
  const params = new Map<string, Float64Array>();
  let offset = 0;
  for (const p of plan.parameters) {
    const size = p.shape.reduce((n, d) => n * d, 1);
    // Non-zero biases make the check stronger than the zero initialisation would.
    const values = Float64Array.from(plan.initialParameters.subarray(offset, offset + size));
    if (p.name.endsWith('.bias')) values.set(pseudoRandom(size, offset + 1, -0.1, 0.1).map(Math.fround));
    params.set(p.name, values);
    offset += size;
  }
  const shapeOf = (name: string): readonly number[] => plan.parameters.find((p) => p.name === name)?.shape ?? [];
  const trainFeeds: Record<string, Feed> = {
    input: f32(x, [batchSize, ...spec.inputShape]),
    label: i64(labels, [batchSize]),
    learning_rate: f32([1], []),
  };
  for (const [name, values] of params) trainFeeds[name] = f32(values, shapeOf(name));
  const stepped = await run(await session(plan.trainStep), trainFeeds);

  const make = options.precision === 'float64' ? f64 : f32;
  const forwardSession = await session(forwardGraph(forward, options.precision === 'float64' ? DataType.DOUBLE : DataType.FLOAT));
  const baseFeeds: Record<string, Feed> = { [forward.input]: make(x, [batchSize, ...spec.inputShape]) };
  for (const [name, values] of params) baseFeeds[name] = make(values, shapeOf(name));
  const loss = async (name: string, values: Float64Array): Promise<number> => {
    const feeds = { ...baseFeeds, [name]: make(values, shapeOf(name)) };
    return crossEntropy(output(await run(forwardSession, feeds), forward.logits).data, labels, spec.classes);
  };

  const slope = async (name: string, values: Float64Array, i: number, step: number): Promise<number> => {
    const perturbed = Float64Array.from(values);
    perturbed[i] = (values[i] as number) + step;
    const plus = await loss(name, perturbed);
    perturbed[i] = (values[i] as number) - step;
    const minus = await loss(name, perturbed);
    return (plus - minus) / (2 * step);
  };

  let checked = 0;
  let skipped = 0;
  const failures: string[] = [];
  for (const [name, values] of params) {
    const updated = output(stepped, `updated.${name}`).data;
    const stride = Math.max(1, Math.floor(values.length / options.coordinatesPerTensor));
    for (let i = 0; i < values.length; i += stride) {
      const analytic = (values[i] as number) - (updated[i] as number);
      const numeric = await slope(name, values, i, options.step);
      if (options.smoothness !== undefined) {
        const half = await slope(name, values, i, options.step / 2);
        const quarter = await slope(name, values, i, options.step / 4);
        const spread = Math.max(numeric, half, quarter) - Math.min(numeric, half, quarter);
        if (spread > options.smoothness) {
          skipped++;
          continue;
        }
      }
      const error = Math.abs(analytic - numeric);
      checked++;
      if (error > options.atol + options.rtol * Math.max(Math.abs(analytic), Math.abs(numeric))) {
        failures.push(`${name}[${i}]: analytic ${analytic}, numeric ${numeric}`);
      }
    }
  }
  expect(failures).toEqual([]);
  return { checked, skipped };
}

const dense: CheckOptions = { precision: 'float64', step: 1e-5, atol: 2e-6, rtol: 2e-4, coordinatesPerTensor: 1000 };

describe('zoo train steps match finite differences of the loss', () => {
  it('logreg', async () => {
    const { checked } = await checkZooModel({ kind: 'logreg', inputShape: [2, 3], classes: 4 }, 5, dense);
    expect(checked).toBe(4 * 6 + 4);
  });

  for (const activation of ['relu', 'tanh', 'sigmoid'] as const) {
    it(`mlp (${activation})`, async () => {
      const spec: ZooSpec = { kind: 'mlp', inputShape: [5], hidden: [4, 3], classes: 3, activation };
      const { checked } = await checkZooModel(spec, 4, dense);
      expect(checked).toBe(5 * 4 + 4 + 4 * 3 + 3 + 3 * 3 + 3);
    });
  }

  it('cnn (FedAvg CNN on 8x8 inputs, float32, sampled coordinates)', async () => {
    const { checked, skipped } = await checkZooModel({ kind: 'cnn', inputShape: [1, 8, 8], classes: 3 }, 3, {
      precision: 'float32',
      step: 5e-3,
      atol: 2e-4,
      rtol: 1e-2,
      coordinatesPerTensor: 16,
      smoothness: 2e-4,
    });
    expect(checked).toBeGreaterThan((2 * (checked + skipped)) / 3);
  });
});
