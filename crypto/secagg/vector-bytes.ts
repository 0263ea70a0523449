/**
 * uint32 vectors as bytes, little-endian whatever the host: the byte order of masked inputs on the wire
 * and of unmasked aggregates in the store (DESIGN.md step 4). On little-endian hosts both directions
 * return views (a multi-megabyte vector is not copied); on big-endian hosts, and for input bytes that
 * are not 4-byte aligned, they read and write through a DataView instead.
 */
import { secaggInvalid } from './errors.js';

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The vector's elements as little-endian uint32s; a view of `vector` on little-endian hosts. */
export function vectorToLittleEndianBytes(vector: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
  const out = new Uint8Array(vector.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < vector.length; i++) view.setUint32(i * 4, vector[i] as number, true);
  return out;
}

/**
 * Reads little-endian uint32s; when `expectedLength` is given the bytes must hold exactly that many.
 * On little-endian hosts an aligned input comes back as a view: do not modify `bytes` while it is used.
 */
export function vectorFromLittleEndianBytes(bytes: Uint8Array, expectedLength?: number): Uint32Array {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength % 4 !== 0) {
    throw secaggInvalid('invalid_length', `a uint32 vector must be a Uint8Array whose length is a multiple of 4, got ${bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : typeof bytes}`);
  }
  const length = bytes.byteLength / 4;
  if (expectedLength !== undefined && length !== expectedLength) {
    throw secaggInvalid('invalid_length', `expected ${expectedLength} uint32 elements (${expectedLength * 4} bytes), got ${length} (${bytes.byteLength} bytes)`);
  }
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, length);
  const out = new Uint32Array(length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}
