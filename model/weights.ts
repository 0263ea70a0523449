/**
 * The flat weight vector (parameters concatenated in plan order) and its canonical encoding:
 *   "fedgate/weights/v1" || u32 count || for each parameter: u32 len || UTF-8 name || u32 rank ||
 *   u32 dims... || f32 values (all integers and floats little-endian).
 * modelHash is the SHA-256 of that encoding, so it binds names and shapes as well as values.
 */
import { createHash } from 'node:crypto';
import { ModelError } from './errors.js';
import { float32ToBytes } from './onnx/tensor.js';
import type { TensorInfo } from './train/optimizer.js';

export interface ParameterLayout {
  readonly parameters: readonly TensorInfo[];
}

const WEIGHTS_TAG = 'fedgate/weights/v1';

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

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

export function modelHash(plan: ParameterLayout, flat: Float32Array): string {
  checkFlatLength(plan, flat, 'flat parameters');
  const encoder = new TextEncoder();
  const hash = createHash('sha256');
  hash.update(encoder.encode(WEIGHTS_TAG));
  hash.update(u32(plan.parameters.length));
  let offset = 0;
  for (const p of plan.parameters) {
    const name = encoder.encode(p.name);
    hash.update(u32(name.length));
    hash.update(name);
    hash.update(u32(p.shape.length));
    for (const d of p.shape) hash.update(u32(d));
    const size = sizeOf(p);
    hash.update(float32ToBytes(flat.subarray(offset, offset + size)));
    offset += size;
  }
  return hash.digest('hex');
}
