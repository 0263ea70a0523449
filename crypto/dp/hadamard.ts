/**
 * The randomized Hadamard rotation of distributed DP (Kairouz, Liu, Steinke 2021, section 4.1): x -> H D x
 * with D a diagonal of random signs and H the orthonormal Walsh-Hadamard matrix of size D = 2^m (the
 * vector zero-padded to a power of two). It spreads a vector's norm evenly over the coordinates (each
 * coordinate of HDx is sub-Gaussian with variance proxy |x|^2 / D), so rounding and the ring's range
 * cost little, and it is an isometry: the inverse is D H (H is symmetric and its own inverse).
 *
 * The signs come from a public seed every participant and the coordinator share (they only need to be
 * independent of the data): AES-128-CTR under key || IV = HKDF(seed, "fedgate/v1/dp-rotation", 32).
 */
import { createCipheriv } from 'node:crypto';
import { assertBytes, utf8 } from '../bytes.js';
import { invalidArgument } from '../errors.js';
import { hkdf } from '../hkdf.js';

const ROTATION_INFO = utf8('fedgate/v1/dp-rotation');

/** The smallest power of two >= d. */
export function paddedDimension(d: number): number {
  if (!Number.isSafeInteger(d) || d < 1 || d > 2 ** 30) throw invalidArgument('INVALID_DIMENSION', `dimension must be an integer in [1, 2^30], got ${String(d)}`);
  let size = 1;
  while (size < d) size *= 2;
  return size;
}

/** The D random signs (+1 / -1) of the rotation, derived from the public seed. */
export function rotationSigns(seed: Uint8Array, size: number): Float64Array {
  assertBytes(seed, 'rotation seed');
  const keyAndIv = hkdf(seed, new Uint8Array(0), ROTATION_INFO, 32);
  const cipher = createCipheriv('aes-128-ctr', keyAndIv.subarray(0, 16), keyAndIv.subarray(16));
  const bits = cipher.update(new Uint8Array(Math.ceil(size / 8)));
  const signs = new Float64Array(size);
  for (let i = 0; i < size; i++) signs[i] = (bits[i >> 3]! >> (i & 7)) & 1 ? -1 : 1;
  return signs;
}

/** In-place orthonormal fast Walsh-Hadamard transform (length a power of two); it is its own inverse. */
export function walshHadamard(x: Float64Array): void {
  const n = x.length;
  if (n === 0 || (n & (n - 1)) !== 0) throw invalidArgument('INVALID_DIMENSION', `the Hadamard transform needs a power-of-two length, got ${n}`);
  for (let half = 1; half < n; half *= 2) {
    for (let start = 0; start < n; start += 2 * half) {
      for (let i = start; i < start + half; i++) {
        const a = x[i]!;
        const b = x[i + half]!;
        x[i] = a + b;
        x[i + half] = a - b;
      }
    }
  }
  const norm = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) x[i]! *= norm;
}

/** H D x for x zero-padded to signs.length. */
export function rotate(x: ArrayLike<number>, signs: Float64Array): Float64Array {
  if (x.length > signs.length) throw invalidArgument('INVALID_DIMENSION', `a vector of ${x.length} values does not fit a rotation of size ${signs.length}`);
  const y = new Float64Array(signs.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * signs[i]!;
  walshHadamard(y);
  return y;
}

/** D H y, the inverse of `rotate`, truncated to the first `dimension` values. */
export function unrotate(y: Float64Array, signs: Float64Array, dimension: number): Float64Array {
  if (y.length !== signs.length) throw invalidArgument('INVALID_DIMENSION', `a rotated vector has ${signs.length} values, got ${y.length}`);
  const x = Float64Array.from(y);
  walshHadamard(x);
  for (let i = 0; i < x.length; i++) x[i]! *= signs[i]!;
  return x.subarray(0, dimension);
}
