/**
 * Model bytes as they are stored and transferred: exactly the canonical weight encoding whose SHA-256 is
 * `modelHash` (model/weights.ts), so a model file names itself and any holder can check it.
 *   "fedgate/weights/v1" || u32 count || per parameter: u32 len || UTF-8 name || u32 rank || u32 dims... ||
 *   float32 values; every integer and float little-endian.
 * Decoding checks the names and shapes against the plan: a model of another architecture is refused.
 * modelHash is the SHA-256 of that encoding, so it binds names and shapes as well as values.
 */
import { sha256Hex } from './digest.js';
import { ModelError } from './errors.js';
import { parameterCount, type ParameterLayout } from './weights.js';

const TAG = new TextEncoder().encode('fedgate/weights/v1');

export function encodeWeights(plan: ParameterLayout, flat: Float32Array): Uint8Array {
  const expected = parameterCount(plan);
  if (flat.length !== expected) {
    throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `weights: got ${flat.length} values, the plan has ${expected}`);
  }
  const names = plan.parameters.map((p) => new TextEncoder().encode(p.name));
  let size = TAG.length + 4;
  plan.parameters.forEach((p, i) => {
    size += 4 + (names[i]?.length ?? 0) + 4 + 4 * p.shape.length;
  });
  size += 4 * flat.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(TAG, 0);
  let offset = TAG.length;
  view.setUint32(offset, plan.parameters.length, true);
  offset += 4;
  let valueOffset = 0;
  plan.parameters.forEach((p, i) => {
    const name = names[i] as Uint8Array;
    view.setUint32(offset, name.length, true);
    out.set(name, offset + 4);
    offset += 4 + name.length;
    view.setUint32(offset, p.shape.length, true);
    offset += 4;
    for (const dim of p.shape) {
      view.setUint32(offset, dim, true);
      offset += 4;
    }
    const count = p.shape.reduce((n, d) => n * d, 1);
    for (let k = 0; k < count; k++) view.setFloat32(offset + 4 * k, flat[valueOffset + k] as number, true);
    offset += 4 * count;
    valueOffset += count;
  });
  return out;
}

/** Hex SHA-256 of the canonical encoding: the name of this model everywhere (stores, RoundConfig, ledger). */
export function modelHash(plan: ParameterLayout, flat: Float32Array): string {
  return sha256Hex(encodeWeights(plan, flat));
}

export function decodeWeights(plan: ParameterLayout, bytes: Uint8Array): Float32Array {
  const fail = (what: string): never => {
    throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `model bytes do not fit this task's model: ${what}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < TAG.length + 4 || !TAG.every((byte, i) => bytes[i] === byte)) fail('they do not start with "fedgate/weights/v1"');
  let offset = TAG.length;
  const read = (): number => {
    if (offset + 4 > bytes.length) fail('they end early');
    const value = view.getUint32(offset, true);
    offset += 4;
    return value;
  };
  const count = read();
  if (count !== plan.parameters.length) fail(`${count} tensors, expected ${plan.parameters.length}`);
  const flat = new Float32Array(parameterCount(plan));
  let valueOffset = 0;
  for (const p of plan.parameters) {
    const nameLength = read();
    if (offset + nameLength > bytes.length) fail('they end early');
    const name = new TextDecoder().decode(bytes.subarray(offset, offset + nameLength));
    offset += nameLength;
    if (name !== p.name) fail(`tensor ${JSON.stringify(name)} where ${JSON.stringify(p.name)} was expected`);
    const rank = read();
    const shape: number[] = [];
    for (let k = 0; k < rank; k++) shape.push(read());
    if (shape.join(',') !== p.shape.join(',')) fail(`${p.name} has shape [${shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    const elements = shape.reduce((n, d) => n * d, 1);
    if (offset + 4 * elements > bytes.length) fail('they end early');
    for (let k = 0; k < elements; k++) flat[valueOffset + k] = view.getFloat32(offset + 4 * k, true);
    offset += 4 * elements;
    valueOffset += elements;
  }
  if (offset !== bytes.length) fail(`${bytes.length - offset} bytes left over after the last tensor`);
  return flat;
}

/**
 * The names and shapes a model file declares, read without a plan: the encoding is self-describing, so
 * an auditor can recompute a round's model from the state directory alone (`fedgate verify`).
 */
export function weightsLayout(bytes: Uint8Array): ParameterLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < TAG.length + 4 || !TAG.every((byte, i) => bytes[i] === byte)) {
    throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', 'model bytes do not start with "fedgate/weights/v1"');
  }
  let offset = TAG.length;
  const read = (): number => {
    if (offset + 4 > bytes.length) throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', 'model bytes end early');
    const value = view.getUint32(offset, true);
    offset += 4;
    return value;
  };
  const count = read();
  const parameters: { name: string; shape: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const nameLength = read();
    const name = new TextDecoder().decode(bytes.subarray(offset, offset + nameLength));
    offset += nameLength;
    const rank = read();
    const shape: number[] = [];
    for (let k = 0; k < rank; k++) shape.push(read());
    parameters.push({ name, shape });
    offset += 4 * shape.reduce((n, d) => n * d, 1);
  }
  return { parameters };
}
