/**
 * A small seeded PRNG for everything in fedgate that must be reproducible from a task's `training.seed`:
 * shuffling, train/test splits and the simulation partitioners. Math.random cannot be seeded, and the
 * results must not depend on the platform, so the generator works on 32-bit integers only
 * (Math.imul, >>>), which every JavaScript engine computes bit-identically.
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
 * ACM TOMS 2021), state seeded by SplitMix32 so that nearby seeds give unrelated streams. The derived
 * real-valued samplers (normal, gamma) call Math.log/sqrt/cos, which V8 implements with the same fdlibm
 * port on every architecture.
 */
import { invalidOption } from './errors.js';

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** One step of SplitMix32 (a 32-bit variant of Steele, Lea & Flood's SplitMix, OOPSLA 2014). */
function splitMix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) | 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * @param seed a non-negative safe integer (the task's `training.seed`)
   * @param stream optional second integer selecting an independent stream for the same seed (e.g. a
   *   client index or an epoch), so callers never have to invent seed arithmetic of their own.
   */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw invalidOption('INVALID_SEED', `seed must be a non-negative safe integer, got ${String(seed)}`);
    }
    if (!Number.isSafeInteger(stream) || stream < 0) {
      throw invalidOption('INVALID_SEED', `stream must be a non-negative safe integer, got ${String(stream)}`);
    }
    // Fold both 53-bit integers into the SplitMix32 input; high and low words are mixed separately.
    const state = { value: (seed >>> 0) ^ Math.imul(Math.floor(seed / TWO_POW_32), 0x632be5ab) };
    state.value = (state.value ^ splitMix32({ value: (stream >>> 0) ^ Math.imul(Math.floor(stream / TWO_POW_32), 0x27d4eb2f) })) | 0;
    this.s0 = splitMix32(state) | 0;
    this.s1 = splitMix32(state) | 0;
    this.s2 = splitMix32(state) | 0;
    this.s3 = splitMix32(state) | 0;
    // xoshiro's state must not be all zero; SplitMix32 outputs make that astronomically unlikely, but
    // the check costs nothing.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32 uniformly distributed bits as an unsigned integer (xoshiro128** 1.1 output function). */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / TWO_POW_53;
  }

  /** Uniform integer in [0, bound), without modulo bias (rejection of the incomplete top interval). */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound <= 0 || bound > TWO_POW_32) {
      throw invalidOption('INVALID_BOUND', `bound must be an integer in [1, 2^32], got ${String(bound)}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % bound);
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % bound;
    }
  }

  /** Standard normal sample (Box-Muller; u1 in (0, 1] so the logarithm is finite). */
  nextNormal(): number {
    const u1 = 1 - this.nextFloat();
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Natural logarithm of a Gamma(shape, 1) sample. Marsaglia & Tsang, "A simple method for generating
   * gamma variables", ACM TOMS 26(3), 2000: for shape >= 1 the squeeze/rejection loop of Sec. 3; for
   * shape < 1 the boost of Sec. 6, Gamma(a) = Gamma(a + 1) * U^(1/a), taken in log space because for
   * the small Dirichlet concentrations used in simulations (a = 0.01) U^(1/a) underflows to zero.
   */
  nextLogGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw invalidOption('INVALID_GAMMA_SHAPE', `gamma shape must be a finite number > 0, got ${String(shape)}`);
    }
    if (shape < 1) {
      const u = 1 - this.nextFloat();
      return this.nextLogGamma(shape + 1) + Math.log(u) / shape;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.nextNormal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.nextFloat();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
  }

  /** Gamma(shape, 1) sample. */
  nextGamma(shape: number): number {
    return Math.exp(this.nextLogGamma(shape));
  }

  /**
   * Dirichlet(alpha, ..., alpha) sample of `dimension` components: normalised gamma variates, computed
   * from log-gammas with the maximum subtracted so that tiny alphas never produce 0/0.
   */
  nextDirichlet(alpha: number, dimension: number): Float64Array {
    const out = new Float64Array(dimension);
    let max = -Infinity;
    for (let i = 0; i < dimension; i++) {
      const g = this.nextLogGamma(alpha);
      out[i] = g;
      if (g > max) max = g;
    }
    let sum = 0;
    for (let i = 0; i < dimension; i++) {
      const e = Math.exp((out[i] as number) - max);
      out[i] = e;
      sum += e;
    }
    for (let i = 0; i < dimension; i++) out[i] = (out[i] as number) / sum;
    return out;
  }

  /** Fisher-Yates shuffle in place (Knuth, TAOCP vol. 2, Algorithm 3.4.2P). */
  shuffle<T extends { length: number; [index: number]: number }>(values: T): T {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = values[i] as number;
      values[i] = values[j] as number;
      values[j] = tmp;
    }
    return values;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The identity permutation 0..n-1 shuffled with Random(seed, stream). */
export function shuffledIndices(count: number, seed: number, stream = 0): Int32Array {
  const indices = new Int32Array(count);
  for (let i = 0; i < count; i++) indices[i] = i;
  return new Random(seed, stream).shuffle(indices);
}
