/** Task documents for model/ tests. */
import type { ModelSpec, OptimizerSpec, TaskDocument } from '../../../model/index.js';

export type ZooSpec = Exclude<ModelSpec, { kind: 'onnx' }>;

export function taskFor(
  model: ZooSpec,
  options: { optimizer?: OptimizerSpec; proximalMu?: number; seed?: number; batchSize?: number } = {},
): TaskDocument {
  return {
    formatVersion: 1,
    model,
    loss: 'cross_entropy',
    input: { shape: [...model.inputShape], dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: Array.from({ length: model.classes }, (_, i) => `class${i}`),
    optimizer: options.optimizer ?? { kind: 'sgd', learningRate: 0.1 },
    training: { epochs: 1, batchSize: options.batchSize ?? 4, proximalMu: options.proximalMu ?? 0, seed: options.seed ?? 1 },
  };
}
