/**
 * Recurrent families against PyTorch 1.13 (scripts/torch_reference/rnn.py): a GRU classifier (last time
 * step) and an LSTM classifier (mean over time), both two layers, bidirectional and batch_first, exported
 * in training mode, imported through fedgate's import path; one step of the training plan's trainBlock
 * must reproduce PyTorch's loss and every parameter gradient, ||g_fedgate - g_torch|| / ||g_torch|| <= 1e-4
 * per tensor. A wrong gate order, bias packing, direction or time step in the GRU/LSTM rules, or a wrong
 * gradient through the exporter's Slice/Concat gate reordering, moves some tensor far past that.
 */
import { describe, expect, it } from 'vitest';
import { checkSystemDependency, systemDependencies } from '../support/system-deps.js';
import {
  TORCH_TOLERANCE,
  compareWithTorch,
  describeComparison,
  fedgateTrainingStep,
  runTorchReference,
} from '../support/torch-reference.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);

const FAMILIES: readonly (readonly [string, string])[] = [
  ['gru_classifier', 'nn.GRU(16, 64, 2 layers, bidirectional, batch_first), last time step, Linear, cross-entropy'],
  ['lstm_classifier', 'nn.LSTM(16, 64, 2 layers, bidirectional, batch_first), mean over time, Linear, cross-entropy'],
];

describe.skipIf(torch.skip)(`fedgate's training step matches PyTorch on recurrent families ${torch.reason}`, () => {
  for (const [family, what] of FAMILIES) {
    it(`${family} (${what})`, async () => {
      const reference = runTorchReference('rnn', family);
      const comparison = compareWithTorch(reference, await fedgateTrainingStep(reference));
      console.log(describeComparison(family, comparison));
      expect(comparison.unmatched).toEqual([]);
      // Every nn.GRU/nn.LSTM weight and bias (2 layers x 2 directions x 4) and the head's weight and bias.
      expect(comparison.gradients.length).toBe(18);
      expect(comparison.lossRelativeError).toBeLessThanOrEqual(TORCH_TOLERANCE);
      expect(comparison.gradients.filter((g) => !(g.relativeError <= TORCH_TOLERANCE))).toEqual([]);
    }, 600_000);
  }
});
