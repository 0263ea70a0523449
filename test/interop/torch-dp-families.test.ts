/**
 * DP-SGD's gradient graph on the PyTorch reference families (scripts/torch_reference/): with C far above
 * every per-example norm, the clipped sum divided by B must be PyTorch's gradient of the batch-mean loss
 * (float64), per tensor within 1e-4 relative; and, since a sum cannot tell whether each example met its
 * own copy of the weights, the first examples' rows must equal the plan's trainStep gradient on that
 * example alone (within 2e-4 relative) - so every per-example form the exporter's graphs meet is
 * checked on real exports (attention with heads folded into the batch, embeddings, tabular mixes, GRU/LSTM
 * on time-major sequences). Models with BatchNorm are refused naming it.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, lossOf, namedInputsOf, unflattenParameters, type TaskDocument } from '../../model/index.js';
import { encodeModel } from '../../model/onnx/codec.js';
import { modelFromGraph } from '../../model/graph/model.js';
import { forwardModelFor } from '../../model/plan.js';
import { prepareModel } from '../../model/train/prepare.js';
import { buildDpGradientGraph, perExampleGradientName } from '../../model/train/dp-graphs.js';
import { f32, output, run, session, type Feed } from '../support/model/ort.js';
import { checkSystemDependency, systemDependencies } from '../support/system-deps.js';
import { referenceTask, runTorchReference, type TorchReference } from '../support/torch-reference.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);
const TOLERANCE = 1e-4;

const SUPPORTED: readonly (readonly [string, string])[] = [
  // nn.MultiheadAttention / TransformerEncoder: heads folded into the batch [B*H, T, d], rows [T*B, E]
  // before the output projection (batch-layout.ts derives where the batch sits).
  ['sequence', 'transformer'],
  ['sequence', 'multihead_attention'],
  ['sequence', 'text'],
  ['sequence', 'tabular'],
  ['sequence', 'tabular_mixed'],
  ['rnn', 'gru_classifier'],
  ['rnn', 'lstm_classifier'],
];

const REFUSED: readonly (readonly [string, string, RegExp])[] = [
  ['cnn', 'resnet18', /BatchNormalization.*per-example gradients do not exist for BatchNorm; use GroupNorm or LayerNorm/],
  // Also has ConvTranspose (refused on its own in test/unit/model/train/dp-per-example.test.ts).
  ['cnn', 'conv_decoder', /BatchNormalization.*use GroupNorm or LayerNorm/],
];

function dpTask(reference: TorchReference): TaskDocument {
  return { ...referenceTask(reference), privacy: { recordLevel: { clipNorm: 1e9, noiseMultiplier: 1, samplingRate: 0.5, stepsPerRound: 1 } } };
}

function feedOf(data: Float32Array | BigInt64Array, dims: readonly number[]): Feed {
  return data instanceof Float32Array ? { type: 'float32', data, dims } : { type: 'int64', data, dims };
}

describe.skipIf(torch.skip)(`DP-SGD's clipped sum on PyTorch reference families ${torch.reason}`, () => {
  for (const [script, family] of SUPPORTED) {
    it(`${family}: sum of per-example gradients / B = PyTorch's batch gradient, rows = single-example gradients`, async () => {
      const reference = runTorchReference(script, family);
      const task = dpTask(reference);
      const plan = buildTrainingPlan(task, reference.model);
      const dp = plan.dpSgd;
      if (dp === undefined) throw new Error('the plan has no dpSgd');
      const feeds: Record<string, Feed> = {};
      const shapes = new Map(plan.parameters.map((p) => [p.name, p.shape]));
      for (const [name, values] of unflattenParameters(plan, plan.initialParameters)) feeds[name] = f32(values, shapes.get(name) ?? []);
      const named = namedInputsOf(task);
      for (const [name, input] of reference.inputs) feeds[named === undefined ? 'input' : `input.${name}`] = feedOf(input.data, input.shape);
      feeds['label'] = feedOf(reference.targets.data, reference.targets.shape);
      const batch = reference.targets.shape[0] as number;
      const results = await run(await session(dp.gradientSum), feeds);
      const errors: string[] = [];
      for (const [name, expected] of reference.gradientsFloat64) {
        const sum = output(results, `clipped_sum.${name}`).data;
        let difference = 0;
        let norm = 0;
        for (let i = 0; i < expected.length; i++) {
          difference += ((sum[i] as number) / batch - (expected[i] as number)) ** 2;
          norm += (expected[i] as number) ** 2;
        }
        const relative = Math.sqrt(difference) / Math.max(Math.sqrt(norm), 1e-12);
        if (relative > TOLERANCE) errors.push(`${name}: ${relative.toExponential(2)}`);
      }
      expect(errors).toEqual([]);
      expect(reference.gradientsFloat64.size).toBeGreaterThan(0);

      // Rows against single-example trainStep runs (SGD momentum: the updated velocity is the gradient).
      const prepared = prepareModel(forwardModelFor(task, reference.model), lossOf(task));
      const rowsGraph = encodeModel(modelFromGraph(buildDpGradientGraph(prepared, { clipNorm: 1e9, perExampleOutputs: true })));
      const rows = await run(await session(rowsGraph), feeds);
      const single = await session(plan.trainStep);
      const examples = Math.min(batch, 3);
      for (let b = 0; b < examples; b++) {
        const one: Record<string, Feed> = { learning_rate: f32([0.1], []) };
        for (const [name, values] of unflattenParameters(plan, plan.initialParameters)) one[name] = f32(values, shapes.get(name) ?? []);
        for (const state of plan.optimizerState) one[state.name] = f32(new Float32Array(state.shape.reduce((n, d) => n * d, 1)), state.shape);
        const slice = (data: Float32Array | BigInt64Array, shape: readonly number[]): Feed => {
          const size = shape.slice(1).reduce((n, d) => n * d, 1);
          return feedOf(data.subarray(b * size, (b + 1) * size), [1, ...shape.slice(1)]);
        };
        for (const [name, input] of reference.inputs) one[named === undefined ? 'input' : `input.${name}`] = slice(input.data, input.shape);
        one['label'] = slice(reference.targets.data, reference.targets.shape);
        const stepped = await run(single, one);
        for (const p of prepared.trainable) {
          const size = p.shape.reduce((n, d) => n * d, 1);
          const row = output(rows, perExampleGradientName(p.name)).data.subarray(b * size, (b + 1) * size);
          const expected = output(stepped, `updated.momentum.${p.name}`).data;
          let difference = 0;
          let norm = 0;
          for (let i = 0; i < size; i++) {
            difference += ((row[i] as number) - (expected[i] as number)) ** 2;
            norm += (expected[i] as number) ** 2;
          }
          if (Math.sqrt(difference) > 2e-4 * Math.max(Math.sqrt(norm), 1e-6)) errors.push(`${p.name} example ${b}: ${(Math.sqrt(difference) / Math.sqrt(norm)).toExponential(2)}`);
        }
      }
      expect(errors).toEqual([]);
    }, 180_000);
  }

  for (const [script, family, message] of REFUSED) {
    it(`${family} is refused under DP-SGD`, () => {
      const reference = runTorchReference(script, family);
      expect(() => buildTrainingPlan(dpTask(reference), reference.model)).toThrow(message);
    }, 180_000);
  }
});
