/**
 * Uniform random integers for the exact samplers, drawn in batches from a RandomSource (the operating
 * system's CSPRNG by default, crypto/quantize.ts; a seeded AES-CTR stream in tests). Every draw is exact:
 * uniform integers below n come from rejection sampling on whole words, never from scaling a float.
 */
import { invalidArgument } from '../errors.js';
import { RandomSource } from '../quantize.js';

const BATCH = 4096;
const TWO_POW_32 = 2 ** 32;

export class RandomWords {
  readonly #source: RandomSource;
  readonly #buffer = new Uint32Array(BATCH);
  #next = BATCH;

  constructor(source: RandomSource = new RandomSource()) {
    if (!(source instanceof RandomSource)) throw invalidArgument('INVALID_RANDOM', 'source must be a RandomSource');
    this.#source = source;
  }

  /** A uniform uint32. */
  word(): number {
    if (this.#next === BATCH) {
      this.#source.fill(this.#buffer);
      this.#next = 0;
    }
    return this.#buffer[this.#next++]!;
  }

  /** A uniform integer in [0, n) for an integer 1 <= n <= 2^53, by rejection (no modulo bias). */
  below(n: number): number {
    if (n <= TWO_POW_32) {
      // Accept words below the largest multiple of n that fits in 2^32.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const w = this.word();
        if (w < limit) return w % n;
      }
    }
    const highRange = Math.ceil(n / TWO_POW_32); // <= 2^21
    for (;;) {
      const value = this.below(highRange) * TWO_POW_32 + this.word();
      if (value < n) return value;
    }
  }

  /** True with probability exactly numerator / denominator (integers, 0 <= numerator <= denominator <= 2^53). */
  bernoulli(numerator: number, denominator: number): boolean {
    return this.below(denominator) < numerator;
  }

  /**
   * True with probability exactly numerator / denominator for BigInt rationals of any size: compares the
   * base-2^32 digits of the fraction with fresh uniform words, stopping at the first that differs (one
   * word almost always suffices).
   */
  bernoulliBig(numerator: bigint, denominator: bigint): boolean {
    return this.bernoulliBigFrom(numerator, denominator, undefined);
  }

  /**
   * bernoulliBig when the first uniform word has already been drawn (`firstWord`): the comparison goes on
   * exactly from there. The float-guarded Bernoulli of discrete-gaussian.ts uses it when the first word
   * alone cannot decide.
   */
  bernoulliBigFrom(numerator: bigint, denominator: bigint, firstWord: number | undefined): boolean {
    if (numerator >= denominator) return true;
    let remainder = numerator;
    let pending = firstWord;
    for (;;) {
      const scaled = remainder << 32n;
      const digit = scaled / denominator;
      remainder = scaled - digit * denominator;
      const w = pending ?? this.word();
      pending = undefined;
      const d = Number(digit);
      if (w !== d) return w < d;
    }
  }
}
