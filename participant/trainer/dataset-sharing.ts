/**
 * Sends each dataset to the worker once. The first call that uses a dataset copies its features and
 * labels into SharedArrayBuffers (or shares them directly when they already live in one) and sends them
 * along; later calls send only its id. The main thread keeps the dataset usable (a transferred
 * ArrayBuffer would be detached), and the worker reads the same memory without a per-call copy.
 * When a dataset is garbage-collected on the main thread the worker is told to drop its reference.
 */
import { type Dataset, type NamedInputValues, featureSize } from '../data/dataset.js';
import { invalidArgument } from './errors.js';
import type { SharedDataset, SharedInput } from './protocol.js';

interface Entry {
  readonly id: number;
  readonly labels: Int32Array;
}

/** Shared copies by original array, so several Trainers (one per task) share one copy of a dataset. */
type Shareable = Float32Array | Int32Array | BigInt64Array;
const sharedCopies = new WeakMap<Shareable, Shareable>();

function toShared<T extends Shareable>(array: T, make: (buffer: SharedArrayBuffer) => T): T {
  if (array.buffer instanceof SharedArrayBuffer) return array;
  const cached = sharedCopies.get(array);
  if (cached !== undefined) return cached as T;
  const copy = make(new SharedArrayBuffer(array.byteLength));
  (copy as Float32Array).set(array as Float32Array);
  sharedCopies.set(array, copy);
  return copy;
}

export class DatasetSharing {
  private readonly entries = new WeakMap<Float32Array, Entry>();
  private readonly registry: FinalizationRegistry<number>;
  private nextId = 1;

  constructor(onRelease: (id: number) => void) {
    this.registry = new FinalizationRegistry(onRelease);
  }

  /** The dataset itself the first time (as shared memory), its id afterwards. */
  refer(dataset: Dataset, argument: string): SharedDataset | number {
    checkDataset(dataset, argument);
    const known = this.entries.get(dataset.features);
    if (known !== undefined && known.labels === dataset.labels) return known.id;
    const id = this.nextId++;
    this.entries.set(dataset.features, { id, labels: dataset.labels });
    this.registry.register(dataset.features, id);
    return {
      id,
      features: toShared(dataset.features, (b) => new Float32Array(b)),
      labels: toShared(dataset.labels, (b) => new Int32Array(b)),
      count: dataset.count,
      featureSize: featureSize(dataset.exampleShape),
      ...(dataset.targets === undefined ? {} : { targets: toShared(dataset.targets, (b) => new Float32Array(b)), targetSize: dataset.targetSize ?? 0 }),
      ...(dataset.inputs === undefined ? {} : { inputs: dataset.inputs.map((input) => sharedInput(input)) }),
    };
  }
}

function sharedInput(input: NamedInputValues): SharedInput {
  const size = featureSize(input.shape);
  const values = input.dtype === 'int64' ? toShared(input.values, (b) => new BigInt64Array(b)) : toShared(input.values, (b) => new Float32Array(b));
  return { name: input.name, dtype: input.dtype, size, values };
}

function checkDataset(dataset: Dataset, argument: string): void {
  if (!(dataset.features instanceof Float32Array) || !(dataset.labels instanceof Int32Array)) {
    throw invalidArgument('INVALID_DATASET', `${argument} must be a Dataset with Float32Array features and Int32Array labels (see participant/data)`);
  }
  const size = featureSize(dataset.exampleShape);
  if (dataset.count !== dataset.labels.length || dataset.features.length !== dataset.count * size) {
    throw invalidArgument(
      'INVALID_DATASET',
      `${argument} is inconsistent: count ${dataset.count}, ${dataset.labels.length} labels, ${dataset.features.length} feature values for examples of ${size}`,
    );
  }
  if (dataset.targets !== undefined && (!(dataset.targets instanceof Float32Array) || dataset.targets.length !== dataset.count * (dataset.targetSize ?? 0) || (dataset.targetSize ?? 0) < 1)) {
    throw invalidArgument('INVALID_DATASET', `${argument} is inconsistent: ${dataset.targets.length} target values for ${dataset.count} examples of targetSize ${String(dataset.targetSize)}`);
  }
  for (const input of dataset.inputs ?? []) {
    const typed = input.dtype === 'int64' ? input.values instanceof BigInt64Array : input.values instanceof Float32Array;
    if (!typed || input.values.length !== dataset.count * featureSize(input.shape)) {
      throw invalidArgument('INVALID_DATASET', `${argument} is inconsistent: input '${input.name}' (${input.dtype} [${input.shape.join(', ')}]) holds ${input.values.length} values for ${dataset.count} examples`);
    }
  }
}
