/**
 * The in-memory dataset every loader produces and the trainer consumes: one flat row-major Float32Array
 * of features and one Int32Array of class indices (or, for multi-label and regression tasks, a flat
 * Float32Array of targets). Flat typed arrays (not arrays of rows) because the
 * trainer copies batches out of them in a hot loop and ships them to its worker thread in one transfer.
 */
import { DataError, invalidOption, requireInteger } from './errors.js';

/** One named model input of every example, example after example (count * product(shape) values). */
export type NamedInputValues =
  | { readonly name: string; readonly dtype: 'float32'; readonly shape: readonly number[]; readonly values: Float32Array }
  | { readonly name: string; readonly dtype: 'int64'; readonly shape: readonly number[]; readonly values: BigInt64Array };

export interface Dataset {
  /**
   * count * product(exampleShape) values, example after example. Empty, with exampleShape [0], when
   * `inputs` holds the examples.
   */
  readonly features: Float32Array;
  /** Class index of every example, each in [0, classes). */
  readonly labels: Int32Array;
  /** Shape of one example, e.g. [64] for the digits CSV or [1, 28, 28] for an IDX image file. */
  readonly exampleShape: readonly number[];
  /** Number of classes; labels are validated against it. */
  readonly classes: number;
  /** Number of examples (= labels.length). */
  readonly count: number;
  /**
   * Float targets of multi-label and regression tasks, `targetSize` per example (count * targetSize
   * values); `labels` then holds zeros and `classes` is 1. Absent for class-index tasks.
   */
  readonly targets?: Float32Array;
  readonly targetSize?: number;
  /**
   * The examples of a task with several named inputs or int64 ids (task `inputs`), in the task's order;
   * `features` is then empty. Absent for the one float32 input.
   */
  readonly inputs?: readonly NamedInputValues[];
}

export interface DatasetInit {
  readonly features: Float32Array;
  readonly labels: Int32Array;
  readonly exampleShape: readonly number[];
  readonly classes: number;
  /** Used in error messages ("<source> example 12: ..."). */
  readonly source?: string;
  /** The examples live elsewhere (createNamedInputDataset): skip the features length check. */
  readonly emptyFeatures?: boolean;
}

export interface TargetDatasetInit {
  readonly features: Float32Array;
  /** count * targetSize finite values. */
  readonly targets: Float32Array;
  readonly targetSize: number;
  readonly exampleShape: readonly number[];
  readonly source?: string;
  readonly emptyFeatures?: boolean;
}

/**
 * A Dataset with float targets (multi-label: 0/1 per label; regression: one value per target). Every
 * check names the offending example.
 */
export function createTargetDataset(init: TargetDatasetInit): Dataset {
  const source = init.source ?? 'dataset';
  requireInteger('targetSize', init.targetSize, 1, 0x7fffffff);
  if (init.targets.length % init.targetSize !== 0) {
    throw invalidOption('TARGET_LENGTH_MISMATCH', `${source}: targets has ${init.targets.length} values, not a multiple of targetSize ${init.targetSize}`);
  }
  const count = init.targets.length / init.targetSize;
  for (let i = 0; i < init.targets.length; i++) {
    if (!Number.isFinite(init.targets[i])) {
      throw new DataError(
        'INVALID_ARGUMENT',
        'TARGET_NOT_FINITE',
        `${source} example ${Math.floor(i / init.targetSize)} (0-based): target ${i % init.targetSize} is ${String(init.targets[i])}; expected a finite number`,
      );
    }
  }
  const dataset = createDataset({ features: init.features, labels: new Int32Array(count), exampleShape: init.exampleShape, classes: 1, source, ...(init.emptyFeatures === true ? { emptyFeatures: true } : {}) });
  return { ...dataset, targets: init.targets, targetSize: init.targetSize };
}

export interface NamedInputDatasetInit {
  readonly inputs: readonly NamedInputValues[];
  /** Class indices (cross_entropy), or... */
  readonly labels?: Int32Array;
  readonly classes?: number;
  /** ...float targets, targetSize per example (multi-label, regression). */
  readonly targets?: Float32Array;
  readonly targetSize?: number;
  readonly source?: string;
}

/**
 * A Dataset whose examples are named inputs (Dataset.inputs). Every input must hold count examples of its
 * shape; labels or targets are checked as createDataset / createTargetDataset check them.
 */
export function createNamedInputDataset(init: NamedInputDatasetInit): Dataset {
  const source = init.source ?? 'dataset';
  if (init.inputs.length === 0) throw invalidOption('INPUTS_EMPTY', `${source}: a named-input dataset needs at least one input`);
  // The targets (or labels) fix the example count; a stand-in feature tensor of 0 values per example.
  const base =
    init.targets !== undefined
      ? createTargetDataset({ features: new Float32Array(0), targets: init.targets, targetSize: init.targetSize ?? 0, exampleShape: [1], source, emptyFeatures: true })
      : createDataset({ features: new Float32Array(0), labels: init.labels ?? new Int32Array(0), exampleShape: [1], classes: init.classes ?? 1, source, emptyFeatures: true });
  for (const input of init.inputs) {
    const size = featureSize(input.shape);
    if (input.values.length !== base.count * size) {
      throw invalidOption(
        'FEATURE_LENGTH_MISMATCH',
        `${source}: input '${input.name}' has ${input.values.length} values; expected ${base.count} examples x ${size} (shape [${input.shape.join(', ')}]) = ${base.count * size}`,
      );
    }
  }
  return { ...base, exampleShape: Object.freeze([0]), inputs: init.inputs };
}

/** Number of values in one example. */
export function featureSize(exampleShape: readonly number[]): number {
  let size = 1;
  for (const dim of exampleShape) size *= dim;
  return size;
}

/**
 * Validates the pieces and returns them as a Dataset. Every check names the offending example, so a
 * label outside [0, classes) coming from any loader is reported with its position.
 */
export function createDataset(init: DatasetInit): Dataset {
  const source = init.source ?? 'dataset';
  requireInteger('classes', init.classes, 1, 0x7fffffff);
  if (init.exampleShape.length === 0) {
    throw invalidOption('INVALID_EXAMPLE_SHAPE', `${source}: exampleShape must have at least one dimension, got []`);
  }
  for (const [axis, dim] of init.exampleShape.entries()) {
    if (!Number.isInteger(dim) || dim <= 0) {
      throw invalidOption(
        'INVALID_EXAMPLE_SHAPE',
        `${source}: exampleShape[${axis}] must be a positive integer, got ${String(dim)} in [${init.exampleShape.join(', ')}]`,
      );
    }
  }
  const size = featureSize(init.exampleShape);
  const count = init.labels.length;
  if (init.emptyFeatures !== true && init.features.length !== count * size) {
    throw invalidOption(
      'FEATURE_LENGTH_MISMATCH',
      `${source}: features has ${init.features.length} values; expected ${count} examples x ${size} = ${count * size}`,
    );
  }
  validateLabels(init.labels, init.classes, source);
  return {
    features: init.features,
    labels: init.labels,
    exampleShape: Object.freeze([...init.exampleShape]),
    classes: init.classes,
    count,
  };
}

/** Throws naming the first example whose label lies outside [0, classes). */
export function validateLabels(labels: Int32Array, classes: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    if (label < 0 || label >= classes) {
      throw new DataError(
        'INVALID_ARGUMENT',
        'LABEL_OUT_OF_RANGE',
        `${source} example ${i} (0-based): label ${label} is outside the class range; expected an integer in [0, ${classes - 1}]`,
      );
    }
  }
}

/** A new Dataset holding the examples at `indices`, in that order (copies; the source is untouched). */
export function subset(dataset: Dataset, indices: ArrayLike<number>): Dataset {
  const size = featureSize(dataset.exampleShape);
  const features = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const targetSize = dataset.targetSize ?? 0;
  const targets = dataset.targets === undefined ? undefined : new Float32Array(indices.length * targetSize);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] as number;
    if (!Number.isInteger(index) || index < 0 || index >= dataset.count) {
      throw invalidOption('INDEX_OUT_OF_RANGE', `indices[${i}] = ${String(index)} is outside [0, ${dataset.count - 1}]`);
    }
    features.set(dataset.features.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = dataset.labels[index] as number;
    targets?.set((dataset.targets as Float32Array).subarray(index * targetSize, (index + 1) * targetSize), i * targetSize);
  }
  const result = { features, labels, exampleShape: dataset.exampleShape, classes: dataset.classes, count: indices.length };
  const withTargets = targets === undefined ? result : { ...result, targets, targetSize };
  return dataset.inputs === undefined ? withTargets : { ...withTargets, inputs: dataset.inputs.map((input) => subsetInput(input, indices)) };
}

function subsetInput(input: NamedInputValues, indices: ArrayLike<number>): NamedInputValues {
  const size = featureSize(input.shape);
  const values = input.dtype === 'int64' ? new BigInt64Array(indices.length * size) : new Float32Array(indices.length * size);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] as number;
    // Same element type on both sides (set() of a BigInt64Array into a Float32Array would throw).
    (values as Float32Array).set((input.values as Float32Array).subarray(index * size, (index + 1) * size), i * size);
  }
  return { ...input, values } as NamedInputValues;
}

/** Number of examples of each class, optionally restricted to `indices`. */
export function labelHistogram(dataset: Pick<Dataset, 'labels' | 'classes'>, indices?: ArrayLike<number>): Int32Array {
  const counts = new Int32Array(dataset.classes);
  if (indices === undefined) {
    for (const label of dataset.labels) counts[label] = (counts[label] as number) + 1;
  } else {
    for (let i = 0; i < indices.length; i++) {
      const label = dataset.labels[indices[i] as number] as number;
      counts[label] = (counts[label] as number) + 1;
    }
  }
  return counts;
}

/**
 * Reinterprets a dataset with a different example shape of the same size, e.g. the 64 digits features
 * as [1, 8, 8] for a CNN, or a [1, 28, 28] image as [784] for an MLP. No data is copied.
 */
export function reshapeExamples(dataset: Dataset, exampleShape: readonly number[]): Dataset {
  const size = featureSize(dataset.exampleShape);
  if (featureSize(exampleShape) !== size || exampleShape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw invalidOption(
      'INVALID_EXAMPLE_SHAPE',
      `exampleShape [${exampleShape.join(', ')}] must be positive integers with ${size} values in total, like [${dataset.exampleShape.join(', ')}]`,
    );
  }
  return { ...dataset, exampleShape: Object.freeze([...exampleShape]) };
}
