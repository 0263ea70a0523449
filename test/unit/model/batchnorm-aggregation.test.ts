/**
 * BatchNorm running statistics are aggregated like every other parameter (docs/operations.md, "Models
 * with BatchNorm"): each site's trained model, running statistics included, enters the secure sum as a
 * delta, so with FedAvg (server learning rate 1) the next global running mean and variance are the
 * example-weighted average of the sites' — not kept local as in FedBN. Two sites train the small_cnn
 * fixture (Conv -> BatchNorm -> ...) one step on different data; nextModel over their weighted deltas must
 * give exactly the weighted average of their running statistics.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, flattenParameters, unflattenParameters } from '../../../model/index.js';
import { nextModel } from '../../../model/next-model.js';
import { initialServerOptimizerState } from '../../../model/server-optimizer.js';
import { SMALL_CNN_LABELS, SMALL_CNN_SHAPE, fixtureBytes, onnxTask } from '../../support/model/fixtures.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed } from '../../support/model/ort.js';

const model = fixtureBytes('small_cnn.onnx');
const task = onnxTask(model, SMALL_CNN_SHAPE, SMALL_CNN_LABELS, { optimizer: { kind: 'sgd', learningRate: 0.1 } });

describe('BatchNorm running statistics in the secure sum', () => {
  it('become the example-weighted average of the sites running statistics under FedAvg', async () => {
    const plan = buildTrainingPlan(task, model);
    const s = await session(plan.trainStep);
    const shapes = new Map(plan.parameters.map((p) => [p.name, p.shape]));
    const global = plan.initialParameters;
    const trainSite = async (seed: number, offset: number): Promise<Float32Array> => {
      const feeds: Record<string, Feed> = { learning_rate: f32([0.1], []) };
      for (const [name, values] of unflattenParameters(plan, global)) feeds[name] = f32(values, shapes.get(name) ?? []);
      const x = pseudoRandom(6 * 144, seed, offset, offset + 2);
      const result = await run(s, { ...feeds, input: f32(x, [6, ...SMALL_CNN_SHAPE]), label: i64([0, 1, 2, 0, 1, 2], [6]) });
      return flattenParameters(plan, new Map(plan.parameters.map((p) => [p.name, Float32Array.from(output(result, `updated.${p.name}`).data)])));
    };
    // Different data (one site's inputs shifted) so the two sites' statistics differ.
    const sites = [await trainSite(1, -1), await trainSite(2, 3)];
    const weights = [0.25, 1];
    const weightedDeltaSum = new Float64Array(global.length);
    sites.forEach((local, k) => {
      for (let i = 0; i < global.length; i++) weightedDeltaSum[i] = (weightedDeltaSum[i] as number) + (weights[k] as number) * ((local[i] as number) - (global[i] as number));
    });
    const optimizer = { kind: 'fedavg', learningRate: 1 } as const;
    const next = nextModel({
      layout: plan,
      model: global,
      optimizer,
      optimizerState: initialServerOptimizerState(optimizer, global.length),
      aggregate: { weightedDeltaSum, weightSum: 1.25 },
    });
    const nextTensors = unflattenParameters(plan, next.model);
    const siteTensors = sites.map((site) => unflattenParameters(plan, site));
    const globalTensors = unflattenParameters(plan, global);
    for (const name of ['bn.running_mean', 'bn.running_var']) {
      const a = siteTensors[0]?.get(name) as Float32Array;
      const b = siteTensors[1]?.get(name) as Float32Array;
      // The sites' statistics moved away from the global ones and from each other.
      expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - (b[i] as number))))).toBeGreaterThan(1e-2);
      expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - ((globalTensors.get(name) as Float32Array)[i] as number))))).toBeGreaterThan(1e-3);
      const averaged = nextTensors.get(name) as Float32Array;
      averaged.forEach((v, i) => expect(v).toBeCloseTo((0.25 * (a[i] as number) + (b[i] as number)) / 1.25, 5));
    }
  });
});
