/**
 * DP-SGD's gradient graph on the PyTorch reference families (scripts/torch_reference/): with C far above
 * every per-example norm, the clipped sum divided by B must be PyTorch's gradient of the batch-mean loss
 * (float64), per tensor within 1e-4 relative - so every per-example form the exporter's graphs meet is
 * checked on real exports (embeddings, tabular mixes, GRU/LSTM on time-major sequences). Families whose
 * models have no per-example form are refused naming why (BatchNorm; nn.MultiheadAttention's rows).
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, namedInputsOf, unflattenParameters, type TaskDocument } from '../../model/index.js';
import { f32, output, run, session, type Feed } from '../support/model/ort.js';
import { checkSystemDependency, systemDependencies } from '../support/system-deps.js';
import { referenceTask, runTorchReference, type TorchReference } from '../support/torch-reference.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);
const TOLERANCE = 1e-4;

const SUPPORTED: readonly (readonly [string, string])[] = [
  ['sequence', 'text'],
  ['sequence', 'tabular'],
  ['sequence', 'tabular_mixed'],
  ['rnn', 'gru_classifier'],
  ['rnn', 'lstm_classifier'],
];

const REFUSED: readonly (readonly [string, string, RegExp])[] = [
  // torch's nn.MultiheadAttention flattens [T, B, E] into rows [T*B, E] before its output projection;
  // the rows' order of t and b is not recoverable from static shapes, so it is refused by node.
  ['sequence', 'transformer', /Gemm \(node '[^']+self_attn[^']*'\) combines a parameter with a value of shape \[batch\*\d+, \d+\], whose batch axis is merged/],
  ['sequence', 'multihead_attention', /Gemm \(node '[^']+'\) combines a parameter with a value of shape \[batch\*\d+, \d+\], whose batch axis is merged/],
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
    it(`${family}: sum of per-example gradients / B = PyTorch's batch gradient`, async () => {
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
    }, 180_000);
  }

  for (const [script, family, message] of REFUSED) {
    it(`${family} is refused under DP-SGD`, () => {
      const reference = runTorchReference(script, family);
      expect(() => buildTrainingPlan(dpTask(reference), reference.model)).toThrow(message);
    }, 180_000);
  }
});
