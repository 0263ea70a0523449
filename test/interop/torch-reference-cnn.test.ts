/**
 * Convolutional families against PyTorch 1.13 (scripts/torch_reference/cnn.py): each model is exported
 * in training mode, imported through fedgate's import path, and one step of the training plan's
 * trainBlock must reproduce PyTorch's loss, every parameter gradient and the BatchNorm running
 * statistics after the step: ||g_fedgate - g_torch|| / ||g_torch|| <= 1e-4 per tensor. A wrong gradient
 * rule anywhere on the path (Conv groups, ConvTranspose, Pad modes, Clip, HardSwish, pooling, BatchNorm)
 * moves at least one tensor far past that.
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

/** Family (a key of cnn.py's FAMILIES) and what it exercises. */
const FAMILIES: readonly (readonly [string, string])[] = [
  ['resnet18', 'torchvision ResNet-18: BasicBlock, strided 1x1 downsample, MaxPool, GlobalAveragePool'],
  ['resnet50', 'torchvision ResNet-50: Bottleneck blocks'],
  ['mobilenet_v2', 'torchvision MobileNetV2: depthwise (grouped) Conv, ReLU6 as Clip'],
  ['mobilenet_v3_small', 'torchvision MobileNetV3-Small: HardSwish, HardSigmoid, squeeze-excitation'],
  ['efficientnet_b0', 'torchvision EfficientNet-B0: SiLU as exported, squeeze-excitation'],
  ['densenet121', 'torchvision DenseNet-121: Concat of every earlier feature map, AveragePool transitions'],
  ['time_series_cnn', '1-D CNN: Conv1d, MaxPool1d, AvgPool1d, ConvTranspose1d, reflect/constant/edge Pad, GlobalMaxPool'],
  ['conv_decoder', 'conv decoder: ConvTranspose2d with strides, padding, output_padding, groups; zero Pad'],
];

describe.skipIf(torch.skip)(`fedgate's training step matches PyTorch on convolutional families ${torch.reason}`, () => {
  for (const [family, what] of FAMILIES) {
    it(`${family} (${what})`, async () => {
      const reference = runTorchReference('cnn', family);
      const comparison = compareWithTorch(reference, await fedgateTrainingStep(reference));
      console.log(describeComparison(family, comparison));
      expect(comparison.unmatched).toEqual([]);
      expect(comparison.gradients.length).toBe(reference.manifest.parameters.length);
      expect(comparison.lossRelativeError).toBeLessThanOrEqual(TORCH_TOLERANCE);
      expect(comparison.gradients.filter((g) => !(g.relativeError <= TORCH_TOLERANCE))).toEqual([]);
      expect(comparison.buffers.filter((b) => !(b.relativeError <= TORCH_TOLERANCE))).toEqual([]);
    }, 600_000);
  }
});
