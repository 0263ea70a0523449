/** Tasks on the shipped digits used by the trainer tests (small, fast, real data). */
import { type TaskDocument, parseTaskDocument } from '../../model/index.js';
import { DIGITS_LABELS, type Dataset, loadDigits, normalize, trainTestSplit } from '../../participant/data/index.js';

export type ModelChoice = { kind: 'logreg' } | { kind: 'mlp'; hidden: number[] };

export function digitsTask(model: ModelChoice = { kind: 'logreg' }, training: Partial<TaskDocument['training']> = {}, optimizer?: TaskDocument['optimizer']): TaskDocument {
  const modelSpec: TaskDocument['model'] =
    model.kind === 'logreg' ? { kind: 'logreg', inputShape: [64], classes: 10 } : { kind: 'mlp', inputShape: [64], hidden: model.hidden, classes: 10 };
  return parseTaskDocument({
    formatVersion: 1,
    model: modelSpec,
    loss: 'cross_entropy',
    input: { shape: [64], dtype: 'float32' },
    normalization: { scale: 1 / 16, offset: 0 },
    labels: [...DIGITS_LABELS],
    optimizer: optimizer ?? { kind: 'sgd', learningRate: 0.1 },
    training: { epochs: 1, batchSize: 32, proximalMu: 0, seed: 7, ...training },
  });
}

/** The digits, scaled to [0, 1], split 80/20 (stratified, fixed seed). */
export async function digitsSplit(): Promise<{ train: Dataset; test: Dataset }> {
  const digits = normalize(await loadDigits(), { scale: 1 / 16, offset: 0 });
  return trainTestSplit(digits, { testFraction: 0.2, seed: 1, stratify: true });
}
