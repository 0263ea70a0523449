/**
 * int64 ids are checked against the embedding tables they index before a dataset reaches the worker:
 * ONNX Runtime would stop on a bare Gather failure naming neither input nor example, and would take a
 * negative id as counting from the table's end, where PyTorch's nn.Embedding refuses it.
 */
import type { Dataset } from '../data/dataset.js';
import { invalidArgument } from './errors.js';

/** id arrays already checked, with the range they were checked against. */
const checked = new WeakMap<BigInt64Array, number>();

/**
 * Throws naming the input, the example and the id when an int64 input of `data` holds an id outside
 * [0, range) (`ranges` by input name; an input without a range must still hold ids >= 0).
 */
export function checkIdRanges(data: Dataset, ranges: Readonly<Record<string, number>> | undefined, argument: string): void {
  for (const input of data.inputs ?? []) {
    if (input.dtype !== 'int64') continue;
    const range = ranges?.[input.name] ?? Number.MAX_SAFE_INTEGER;
    if (checked.get(input.values) === range) continue;
    const limit = BigInt(range);
    const size = input.shape.reduce((n, d) => n * d, 1);
    for (let i = 0; i < input.values.length; i++) {
      const id = input.values[i] as bigint;
      if (id < 0n || id >= limit) {
        const valid = range === Number.MAX_SAFE_INTEGER ? 'expected ids >= 0' : `expected ids in [0, ${range - 1}] (the rows of the embedding table it indexes)`;
        throw invalidArgument('ID_OUT_OF_RANGE', `${argument} input '${input.name}', example ${Math.floor(i / size)} (0-based): id ${id}; ${valid}`);
      }
    }
    checked.set(input.values, range);
  }
}
