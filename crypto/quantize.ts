/**
 * Fixed-point encoding of a site's upload vector (DESIGN.md step 4). Secure aggregation sums vectors in
 * Z_{2^32}, so every real value is clipped to [-R_i, R_i] and sent as stochastic_round(x * M / R_i) with
 * M = floor((2^31 - 1) / |U|): the sum of |U| such values lies in [-(2^31 - 1), 2^31 - 1] and reads back
 * as an int32 without wrapping. Counts (evaluation examples, correct predictions) are sent exactly.
 * Stochastic rounding (floor, then +1 with probability equal to the fraction) keeps the encoding
 * unbiased, so the aggregate is an unbiased estimate of the true sum (as in Bonawitz et al. 2017,
 * section 3, and the fixed-point encodings of SecAgg deployments).
 */
import { createCipheriv, randomFillSync, type Cipher } from 'node:crypto';
import { releaseBuffer } from './buffer-release.js';
import { assertBytes, assertInteger, utf8 } from './bytes.js';
import { CryptoError, describeValue, invalidArgument } from './errors.js';
import { hkdf } from './hkdf.js';

/** One run of slots in the vector layout: real values with bound R, or exact counts up to max. */
export type Segment = { kind: 'scaled'; length: number; bound: number } | { kind: 'count'; length: number; max: number };

const INT32_MAX = 0x7fff_ffff;
/** Random words drawn per batch; bounds the scratch memory of `quantize`. */
const BATCH = 16_384;
const TWO_POW_MINUS_32 = 2 ** -32;

/** M = floor((2^31 - 1) / |U|), the quantization scale for |U| participants. */
export function quantizationScale(participantCount: number): number {
  assertInteger(participantCount, 'participantCount', 1, INT32_MAX);
  return Math.floor(INT32_MAX / participantCount);
}

/** Total number of slots of a layout. */
export function layoutLength(layout: readonly Segment[]): number {
  if (!Array.isArray(layout)) throw invalidArgument('INVALID_LAYOUT', `layout must be an array of segments, got ${describeValue(layout)}`);
  let total = 0;
  for (const [index, segment] of layout.entries()) {
    if (typeof segment !== 'object' || segment === null) {
      throw invalidArgument('INVALID_LAYOUT', `layout[${index}] must be a segment object, got ${describeValue(segment)}`);
    }
    assertInteger(segment.length, `layout[${index}].length`, 0, INT32_MAX);
    total += segment.length;
  }
  return total;
}

function checkLayout(layout: readonly Segment[], scale: number): number {
  assertInteger(scale, 'scale', 1, INT32_MAX);
  const total = layoutLength(layout);
  for (const [index, segment] of layout.entries()) {
    if (segment.kind === 'scaled') {
      if (typeof segment.bound !== 'number' || !Number.isFinite(segment.bound) || segment.bound <= 0) {
        throw invalidArgument('INVALID_LAYOUT', `layout[${index}].bound must be a finite positive number, got ${describeValue(segment.bound)}`);
      }
    } else if (segment.kind === 'count') {
      // A count is sent as itself, so |U| counts sum without wrapping only if max <= M.
      assertInteger(segment.max, `layout[${index}].max`, 0, scale);
    } else {
      throw invalidArgument('INVALID_LAYOUT', `layout[${index}].kind must be 'scaled' or 'count', got ${describeValue((segment as { kind: unknown }).kind)}`);
    }
  }
  return total;
}

function checkLength(name: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw invalidArgument('INVALID_LENGTH', `${name} must hold ${expected} elements (the layout's length), got ${actual}`);
  }
}

/**
 * Uniform random uint32s in bulk. The default draws from the operating system's CSPRNG (what sites use);
 * `RandomSource.seeded` is a deterministic AES-128-CTR stream for reproducible tests and benchmarks.
 */
export class RandomSource {
  #cipher: Cipher | undefined;
  #zeros = new Uint8Array(0);

  /** A deterministic source: AES-128-CTR under key || IV = HKDF(seed, salt = empty, "fedgate/v1/test-random", 32). */
  static seeded(seed: Uint8Array): RandomSource {
    assertBytes(seed, 'seed');
    const source = new RandomSource();
    const keyAndIv = hkdf(seed, new Uint8Array(0), utf8('fedgate/v1/test-random'), 32);
    source.#cipher = createCipheriv('aes-128-ctr', keyAndIv.subarray(0, 16), keyAndIv.subarray(16));
    keyAndIv.fill(0);
    return source;
  }

  /** Fills `out` with independent uniform uint32s. */
  fill(out: Uint32Array): void {
    if (!(out instanceof Uint32Array)) throw invalidArgument('INVALID_TARGET', `out must be a Uint32Array, got ${describeValue(out)}`);
    if (this.#cipher === undefined) {
      randomFillSync(out);
      return;
    }
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    if (this.#zeros.length < bytes.length) this.#zeros = new Uint8Array(bytes.length);
    const keystream = this.#cipher.update(this.#zeros.subarray(0, bytes.length));
    bytes.set(keystream);
    releaseBuffer(keystream);
  }
}

let defaultSource: RandomSource | undefined;

function notFinite(index: number, value: number, segment: number): CryptoError {
  return invalidArgument('VALUE_NOT_FINITE', `values[${index}] is ${value}, expected a finite number (layout[${segment}], scaled)`);
}

function badCount(index: number, value: number, segment: number, max: number): CryptoError {
  const reason = Number.isInteger(value) ? 'COUNT_OUT_OF_RANGE' : 'COUNT_NOT_INTEGER';
  return invalidArgument(reason, `values[${index}] is ${value}, expected an integer count in [0, ${max}] (layout[${segment}], count)`);
}

/**
 * Encodes `values` into `out` as int32 two's complement (DESIGN.md step 4): 'scaled' slots are clipped
 * to [-bound, bound] and stochastically rounded to x * scale / bound; 'count' slots must be integers in
 * [0, max] and are sent exactly. NaN or infinite values and bad counts throw INVALID_ARGUMENT naming
 * the index; `out` is then partly written and must be discarded.
 */
export function quantize(
  values: Float32Array | Float64Array,
  layout: readonly Segment[],
  scale: number,
  out: Uint32Array,
  random?: RandomSource,
): void {
  if (!(values instanceof Float32Array || values instanceof Float64Array)) {
    throw invalidArgument('INVALID_VALUES', `values must be a Float32Array or Float64Array, got ${describeValue(values)}`);
  }
  if (!(out instanceof Uint32Array)) throw invalidArgument('INVALID_TARGET', `out must be a Uint32Array, got ${describeValue(out)}`);
  if (random !== undefined && !(random instanceof RandomSource)) {
    throw invalidArgument('INVALID_RANDOM', `random must be a RandomSource, got ${describeValue(random)}`);
  }
  const total = checkLayout(layout, scale);
  checkLength('values', values.length, total);
  checkLength('out', out.length, total);
  const source = random ?? (defaultSource ??= new RandomSource());
  const draws = new Uint32Array(Math.min(BATCH, total));
  let start = 0;
  for (const [segmentIndex, segment] of layout.entries()) {
    const end = start + segment.length;
    if (segment.kind === 'count') {
      for (let i = start; i < end; i++) {
        const value = values[i]!;
        if (!(value >= 0 && value <= segment.max && Number.isInteger(value))) throw badCount(i, value, segmentIndex, segment.max);
        out[i] = value;
      }
    } else {
      for (let batchStart = start; batchStart < end; batchStart += BATCH) {
        const batchEnd = Math.min(end, batchStart + BATCH);
        source.fill(batchEnd - batchStart === draws.length ? draws : draws.subarray(0, batchEnd - batchStart));
        quantizeScaled(values, out, batchStart, batchEnd, segment.bound, scale, draws, segmentIndex);
      }
    }
    start = end;
  }
}

/**
 * stochastic_round(clip(x) * scale / bound) for values[start, end), with draws[i - start] as the coin.
 * floor(y + u) with u = draw / 2^32 uniform in [0, 1) rounds up with probability frac(y): unbiased up to
 * the 2^-32 grid of u and the rounding of y + u (at most 2^-22 of a step, as |y| < 2^31). Clipping the
 * rounded value to [-scale, scale] equals rounding the clipped input, because `factor` is nudged so that
 * bound * factor >= scale: any |x| >= bound lands on +/-scale exactly. The loops have no data-dependent
 * branch (a coin-flip branch mispredicts half the time); a NaN or infinite x turns `check` into NaN.
 */
function quantizeScaled(
  values: Float32Array | Float64Array,
  out: Uint32Array,
  start: number,
  end: number,
  bound: number,
  scale: number,
  draws: Uint32Array,
  segmentIndex: number,
): void {
  let factor = scale / bound;
  while (bound * factor < scale) factor *= 1 + Number.EPSILON;
  const signed = new Int32Array(out.buffer, out.byteOffset, out.length);
  // Two copies of one loop so that V8 compiles each for one array type (a loop that reads both kinds of
  // array ran at half the speed).
  const check = values instanceof Float32Array ? roundRun32(values, signed, start, end, factor, scale, draws) : roundRun64(values, signed, start, end, factor, scale, draws);
  if (check === 0) return;
  for (let i = start; i < end; i++) {
    if (!Number.isFinite(values[i])) throw notFinite(i, values[i]!, segmentIndex);
  }
}

/** The int32 stochastic rounding of x * factor clipped to [-scale, scale], with `coin` a uniform uint32. */
function roundScaled(x: number, factor: number, scale: number, coin: number): number {
  return Math.min(scale, Math.max(-scale, Math.floor(x * factor + coin * TWO_POW_MINUS_32)));
}

function roundRun32(values: Float32Array, out: Int32Array, start: number, end: number, factor: number, scale: number, draws: Uint32Array): number {
  let check = 0;
  for (let i = start, j = 0; i < end; i++, j++) {
    const x = values[i]!;
    check += x * 0;
    out[i] = roundScaled(x, factor, scale, draws[j]!);
  }
  return check;
}

function roundRun64(values: Float64Array, out: Int32Array, start: number, end: number, factor: number, scale: number, draws: Uint32Array): number {
  let check = 0;
  for (let i = start, j = 0; i < end; i++, j++) {
    const x = values[i]!;
    check += x * 0;
    out[i] = roundScaled(x, factor, scale, draws[j]!);
  }
  return check;
}

/**
 * Decodes the unmasked sum of |U| quantized vectors (DESIGN.md step 6): each element is read as an
 * int32; 'scaled' slots become v * bound / scale, 'count' slots v.
 */
export function dequantizeSum(sum: Uint32Array, layout: readonly Segment[], scale: number, out: Float64Array): void {
  if (!(sum instanceof Uint32Array)) throw invalidArgument('INVALID_SUM', `sum must be a Uint32Array, got ${describeValue(sum)}`);
  if (!(out instanceof Float64Array)) throw invalidArgument('INVALID_TARGET', `out must be a Float64Array, got ${describeValue(out)}`);
  const total = checkLayout(layout, scale);
  checkLength('sum', sum.length, total);
  checkLength('out', out.length, total);
  let start = 0;
  for (const segment of layout) {
    const end = start + segment.length;
    if (segment.kind === 'count') {
      for (let i = start; i < end; i++) out[i] = sum[i]! | 0;
    } else {
      const bound = segment.bound;
      for (let i = start; i < end; i++) out[i] = ((sum[i]! | 0) * bound) / scale;
    }
    start = end;
  }
}
