/**
 * The one byte order of uint32 vectors on the wire: masked inputs and aggregates travel as their
 * elements little-endian (docs/protocol.md), whatever the byte order of the host that sends or receives
 * them. Every path that turns such a vector into bytes or back goes through this pair, so the upload
 * hash a site signs, the bytes the coordinator sums and the aggregate hash a site recomputes agree.
 */
import { secaggInvalid } from './errors.js';

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * The little-endian bytes of `vector`. On little-endian hosts a view of the vector itself (no copy of a
 * multi-megabyte buffer: do not modify the vector while the bytes are in use); elsewhere a swapped copy.
 */
export function vectorToLittleEndianBytes(vector: Uint32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
  const bytes = new Uint8Array(vector.byteLength);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vector.length; i++) view.setUint32(i * 4, vector[i] as number, true);
  return bytes;
}

/**
 * The vector whose little-endian bytes are `bytes`, always a fresh aligned copy (received bytes may sit at
 * any offset of a shared buffer). With `expectedLength`, bytes of any other length than 4 * expectedLength
 * are refused.
 */
export function vectorFromLittleEndianBytes(bytes: Uint8Array, expectedLength?: number): Uint32Array {
  if (expectedLength !== undefined && bytes.byteLength !== expectedLength * 4) {
    throw secaggInvalid('VECTOR_LENGTH', `a vector of ${expectedLength} uint32 is ${expectedLength * 4} bytes, got ${bytes.byteLength}`);
  }
  if (bytes.byteLength % 4 !== 0) throw secaggInvalid('VECTOR_LENGTH', `a uint32 vector is a multiple of 4 bytes long, got ${bytes.byteLength}`);
  const vector = new Uint32Array(bytes.byteLength / 4);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(vector.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < vector.length; i++) vector[i] = view.getUint32(i * 4, true);
  }
  return vector;
}
