/**
 * HKDF with HMAC-SHA256, RFC 5869. Extract and Expand are exposed separately because the PRG of
 * DESIGN.md step 4 uses Expand alone: its seed is already a uniformly random 32-byte key.
 */
import { assertBytes, assertInteger } from './bytes.js';
import { SHA256_LENGTH, hmacSha256 } from './hash.js';
import { invalidArgument } from './errors.js';

/** RFC 5869 section 2.3: L <= 255 * HashLen. */
export const HKDF_MAX_LENGTH = 255 * SHA256_LENGTH;

/**
 * RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM). An empty salt stands for HashLen zero bytes; HMAC
 * pads its key with zeros, so both give the same PRK.
 */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  assertBytes(salt, 'salt');
  assertBytes(ikm, 'ikm');
  return hmacSha256(salt.length === 0 ? new Uint8Array(SHA256_LENGTH) : salt, ikm);
}

/**
 * RFC 5869 section 2.3: T(0) = empty, T(i) = HMAC-Hash(PRK, T(i-1) || info || i), OKM = the first
 * `length` bytes of T(1) || T(2) || ...
 */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertBytes(prk, 'prk');
  if (prk.length < SHA256_LENGTH) {
    // Section 2.3 requires "a pseudorandom key of at least HashLen octets".
    throw invalidArgument('INVALID_LENGTH', `prk must be at least ${SHA256_LENGTH} bytes long, got ${prk.length} bytes`);
  }
  assertBytes(info, 'info');
  assertInteger(length, 'length', 0, HKDF_MAX_LENGTH);
  const okm = new Uint8Array(length);
  const counter = new Uint8Array(1);
  let previous: Uint8Array = new Uint8Array(0);
  for (let offset = 0, i = 1; offset < length; offset += SHA256_LENGTH, i++) {
    counter[0] = i;
    previous = hmacSha256(prk, previous, info, counter);
    okm.set(previous.subarray(0, Math.min(SHA256_LENGTH, length - offset)), offset);
  }
  previous.fill(0);
  return okm;
}

/** Extract-then-Expand (RFC 5869 section 2). The intermediate PRK is zeroed before returning. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = hkdfExtract(salt, ikm);
  try {
    return hkdfExpand(prk, info, length);
  } finally {
    prk.fill(0);
  }
}
