/** The committed ONNX fixtures (made by test/fixtures/onnx/make_fixtures.py with onnx.helper). */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OptimizerSpec, TaskDocument } from '../../../model/index.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/onnx/', import.meta.url));

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURES}${name}`));
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A kind-'onnx' task for a forward model with the given per-example input shape and labels. */
export function onnxTask(
  bytes: Uint8Array,
  inputShape: number[],
  labels: string[],
  options: { optimizer?: OptimizerSpec; proximalMu?: number } = {},
): TaskDocument {
  return {
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256: sha256(bytes) },
    loss: 'cross_entropy',
    input: { shape: inputShape, dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels,
    optimizer: options.optimizer ?? { kind: 'sgd', learningRate: 0.1 },
    training: { epochs: 1, batchSize: 8, proximalMu: options.proximalMu ?? 0, seed: 0 },
  };
}

export const SMALL_CNN_SHAPE = [1, 12, 12];
export const SMALL_CNN_LABELS = ['circle', 'square', 'cross'];
