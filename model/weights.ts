/**
 * The flat weight vector: parameters concatenated in plan order. Its canonical encoding and the model
 * hash over it live in weight-codec.ts.
 */
import { ModelError } from './errors.js';
import type { TensorInfo } from './train/optimizer.js';

export interface ParameterLayout {
  readonly parameters: readonly TensorInfo[];
}

const sizeOf = (info: TensorInfo): number => info.shape.reduce((n, d) => n * d, 1);

export function parameterCount(plan: ParameterLayout): number {
  return plan.parameters.reduce((n, p) => n + sizeOf(p), 0);
}

function checkFlatLength(plan: ParameterLayout, flat: Float32Array, what: string): void {
  const expected = parameterCount(plan);
  if (!(flat instanceof Float32Array) || flat.length !== expected) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'PARAMETERS_MISMATCH',
      `${what}: got ${flat instanceof Float32Array ? `${flat.length} float32 values` : typeof flat}; expected a Float32Array of ${expected} values (${plan.parameters.length} tensors)`,
    );
  }
}

export function flattenParameters(plan: ParameterLayout, tensors: ReadonlyMap<string, Float32Array>): Float32Array {
  const flat = new Float32Array(parameterCount(plan));
  const known = new Set(plan.parameters.map((p) => p.name));
  const extra = [...tensors.keys()].filter((name) => !known.has(name));
  if (extra.length > 0) {
    throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `unknown parameter(s) ${extra.map((n) => `'${n}'`).join(', ')}; the plan has ${[...known].join(', ')}`);
  }
  let offset = 0;
  for (const p of plan.parameters) {
    const values = tensors.get(p.name);
    const size = sizeOf(p);
    if (values === undefined) throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `parameter '${p.name}' is missing`);
    if (values.length !== size) {
      throw new ModelError(
        'INVALID_ARGUMENT',
        'PARAMETERS_MISMATCH',
        `parameter '${p.name}' has ${values.length} values; shape [${p.shape.join(', ')}] needs ${size}`,
      );
    }
    flat.set(values, offset);
    offset += size;
  }
  return flat;
}

export function unflattenParameters(plan: ParameterLayout, flat: Float32Array): Map<string, Float32Array> {
  checkFlatLength(plan, flat, 'flat parameters');
  const tensors = new Map<string, Float32Array>();
  let offset = 0;
  for (const p of plan.parameters) {
    const size = sizeOf(p);
    tensors.set(p.name, flat.slice(offset, offset + size));
    offset += size;
  }
  return tensors;
}
