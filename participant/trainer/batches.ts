/**
 * Preallocated batch buffers. The training loop gathers the rows of each (shuffled) batch into one
 * Float32Array and one BigInt64Array that live for the whole call, so a step allocates nothing in
 * proportion to the batch. Labels are int64 in the graph ('label' int64 [B]); writing them through an
 * Int32Array view of the same memory (low word = label, high word = sign) avoids creating a BigInt
 * per label on little-endian machines, which is every platform onnxruntime-node ships for.
 */
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

export class BatchBuffer {
  /** capacity * featureSize values. */
  readonly input: Float32Array;
  /** capacity labels. */
  readonly labels: BigInt64Array;
  /** capacity * targetSize float targets (multi-label and regression plans; empty otherwise). */
  readonly targets: Float32Array;
  private readonly labelWords: Int32Array;

  constructor(
    readonly capacity: number,
    readonly featureSize: number,
    readonly targetSize = 0,
  ) {
    this.input = new Float32Array(capacity * featureSize);
    this.labels = new BigInt64Array(targetSize === 0 ? capacity : 0);
    this.labelWords = new Int32Array(this.labels.buffer);
    this.targets = new Float32Array(capacity * targetSize);
  }

  /** As gather, for float targets (targetSize per example) instead of class labels. */
  gatherTargets(features: Float32Array, targets: Float32Array, order: Int32Array, start: number, count: number): void {
    const size = this.featureSize;
    const width = this.targetSize;
    for (let row = 0; row < count; row++) {
      const example = order[start + row] as number;
      this.input.set(features.subarray(example * size, example * size + size), row * size);
      this.targets.set(targets.subarray(example * width, example * width + width), row * width);
    }
  }

  /**
   * Copies examples order[start], ..., order[start + count - 1] to rows at, ..., at + count - 1.
   */
  gather(features: Float32Array, labels: Int32Array, order: Int32Array, start: number, count: number, at = 0): void {
    const size = this.featureSize;
    for (let i = 0; i < count; i++) {
      const example = order[start + i] as number;
      const row = at + i;
      // subarray is a view (no copy of the data); set() is a memcpy.
      this.input.set(features.subarray(example * size, example * size + size), row * size);
      const label = labels[example] as number;
      if (LITTLE_ENDIAN) {
        this.labelWords[2 * row] = label;
        this.labelWords[2 * row + 1] = label < 0 ? -1 : 0;
      } else {
        this.labels[row] = BigInt(label);
      }
    }
  }
}

/** One named plan input ('input.<name>') of the batch buffers. */
export interface NamedInputLayout {
  /** The dataset's input name (Dataset.inputs[].name); the plan input is `input.${name}`. */
  readonly name: string;
  readonly dtype: 'float32' | 'int64';
  /** Values per example. */
  readonly size: number;
}

/**
 * Preallocated buffers of a plan with named inputs: one typed array per input, gathered row by row like
 * BatchBuffer's features (int64 ids are copied as int64, no BigInt per value).
 */
export class NamedInputBuffers {
  readonly values: readonly (Float32Array | BigInt64Array)[];

  constructor(
    readonly capacity: number,
    readonly layout: readonly NamedInputLayout[],
  ) {
    this.values = layout.map((input) => (input.dtype === 'int64' ? new BigInt64Array(capacity * input.size) : new Float32Array(capacity * input.size)));
  }

  /** Copies examples order[start], ..., order[start + count - 1]; `sources` in `layout` order. */
  gather(sources: readonly (Float32Array | BigInt64Array)[], order: Int32Array, start: number, count: number): void {
    for (const [index, input] of this.layout.entries()) {
      // Both arrays have the input's element type (checked when the dataset reaches the engine).
      const target = this.values[index] as Float32Array;
      const source = sources[index] as Float32Array;
      const size = input.size;
      for (let row = 0; row < count; row++) {
        const example = order[start + row] as number;
        target.set(source.subarray(example * size, example * size + size), row * size);
      }
    }
  }
}
