/** Task documents for model/ tests. */
import { ModelError, parseTaskDocument, type ModelSpec, type OptimizerSpec, type TaskDocument } from '../../../model/index.js';

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

/** The message of the ModelError parseTaskDocument throws for `value`; fails the test if it parses. */
export function taskErrorOf(value: unknown): string {
  try {
    parseTaskDocument(value);
  } catch (error) {
    if (error instanceof ModelError) return error.message;
    throw error;
  }
  throw new Error('expected parseTaskDocument to throw');
}
