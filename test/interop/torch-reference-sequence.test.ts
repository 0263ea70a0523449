/**
 * Sequence, text and tabular families against PyTorch 1.13 (scripts/torch_reference/sequence.py), with
 * cross-entropy: ||g_fedgate - g_torch|| / ||g_torch|| <= 1e-4 for every parameter tensor.
 *
 * Every family runs the whole way a site does: fedgate's import, training plan and one trainBlock step
 * (test/support/torch-reference.ts). transformer, text and tabular_mixed take int64 token/category ids
 * (tabular_mixed a float32 and an int64 named input), which reach the plan as the task's named inputs
 * ('input.<name>'), so every op rule on their path - embedding Gather with repeated ids, masked attention
 * with heads folded into the batch, LayerNormalization, GELU in both forms, SiLU - and the plan's own
 * loss and optimiser wiring are held to PyTorch's gradients.
 */
import { describe, expect, it } from 'vitest';
import { checkSystemDependency, systemDependencies } from '../support/system-deps.js';
import { TORCH_TOLERANCE, compareWithTorch, describeComparison, fedgateTrainingStep, type TorchComparison, type TorchReference, runTorchReference } from '../support/torch-reference.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);

function expectMatch(reference: TorchReference, comparison: TorchComparison): void {
  expect(comparison.unmatched).toEqual([]);
  expect(comparison.gradients.length).toBe(reference.manifest.parameters.length);
  expect(comparison.lossRelativeError).toBeLessThanOrEqual(TORCH_TOLERANCE);
  expect(comparison.gradients.filter((g) => !(g.relativeError <= TORCH_TOLERANCE))).toEqual([]);
  // Every parameter really receives a gradient (a cut path would "match" an all-zero torch gradient only).
  expect(comparison.gradients.filter((g) => !(g.torchNorm > 1e-6))).toEqual([]);
}

/** Family (a key of sequence.py's FAMILIES) and what it exercises. */
const FAMILIES: readonly (readonly [string, string])[] = [
  ['tabular', 'LayerNorm, exact GELU (Erf), tanh GELU, SiLU, residual'],
  ['tabular_mixed', 'numeric and int64 categorical named inputs, three embedding tables via Gather, Concat'],
  ['text', 'embedding text classifier on int64 ids: Gather with repeated ids, ReduceMean pool'],
  ['transformer_features', 'Linear 16 -> 128, nn.TransformerEncoder as above, mask from all-zero steps'],
  ['transformer_fresh', 'the same, freshly constructed: the export ties equal initializers through Identity; fedgate unties them'],
  ['multihead_attention', 'nn.MultiheadAttention called directly: sequence-first, need_weights, key-padding and causal masks'],
  ['transformer', 'nn.TransformerEncoder, 2 layers, d 128, 4 heads, ff 256, key-padding mask, masked mean pool'],
];

describe.skipIf(torch.skip)(`fedgate's gradients match PyTorch on sequence, text and tabular families ${torch.reason}`, () => {
  for (const [family, what] of FAMILIES) {
    it(`${family} (${what})`, async () => {
      const reference = runTorchReference('sequence', family);
      const step = await fedgateTrainingStep(reference);
      const comparison = compareWithTorch(reference, step);
      console.log(describeComparison(family, comparison));
      expectMatch(reference, comparison);
    }, 600_000);
  }
});
