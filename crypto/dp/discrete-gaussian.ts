/**
 * Exact samplers for integer noise (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential
 * Privacy", section 5): Bernoulli(exp(-gamma)) for rational gamma (Algorithm 1), the discrete Laplace
 * (Algorithm 2) and the discrete Gaussian N_Z(0, sigma^2) by rejection from it (Algorithm 3). Only integer
 * and rational arithmetic touches the randomness: no float ever decides an outcome, so the output
 * distribution is exactly the one the privacy analysis assumes, immune to the floating-point attacks on
 * textbook samplers (Mironov 2012; Jin et al. 2022 on discrete Gaussian samplers built from floats).
 *
 * Rationals are kept as Numbers while every product stays a safe integer (below 2^53), and as BigInt
 * beyond, where a Bernoulli compares the base-2^32 digits of the fraction with random words.
 */
import { invalidArgument } from '../errors.js';
import { RandomWords } from './random-words.js';

/** A non-negative rational numerator / denominator. */
export interface Rational {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

const SAFE = 2 ** 53;
/** K in Algorithm 1 rarely exceeds 20; Number-path Bernoullis need denominator * K below 2^53. */
const SAFE_DENOMINATOR = SAFE / 1024;

/**
 * True with probability exp(-numerator / denominator) (CKS20 Algorithm 1): for gamma in [0, 1], K counts
 * successes of Bernoulli(gamma / K) for K = 1, 2, ... and the output is "K odd", which has probability
 * sum_k (-gamma)^k / k! = exp(-gamma); for gamma > 1, exp(-gamma) = exp(-1)^floor(gamma) exp(-frac(gamma)).
 */
export function bernoulliExpMinus(random: RandomWords, numerator: bigint, denominator: bigint): boolean {
  if (denominator <= 0n || numerator < 0n) throw invalidArgument('INVALID_DP_PARAMETER', 'bernoulliExpMinus needs numerator >= 0 and denominator > 0');
  if (numerator <= BigInt(SAFE) && denominator <= BigInt(SAFE_DENOMINATOR)) return bernoulliExpMinusSmall(random, Number(numerator), Number(denominator));
  const whole = numerator / denominator;
  for (let i = 0n; i < whole; i++) {
    if (!bernoulliExpMinusOne(random)) return false;
  }
  const fraction = numerator - whole * denominator;
  let k = 1n;
  while (random.bernoulliBig(fraction, denominator * k)) k++;
  return (k & 1n) === 1n;
}

/** The same for Number numerator and denominator (safe integers, denominator <= 2^43). */
export function bernoulliExpMinusSmall(random: RandomWords, numerator: number, denominator: number): boolean {
  let rest = numerator;
  while (rest >= denominator) {
    if (!bernoulliExpMinusOne(random)) return false;
    rest -= denominator;
  }
  let k = 1;
  while (denominator * k < SAFE && random.bernoulli(rest, denominator * k)) k++;
  if (denominator * k >= SAFE) return bernoulliExpMinus(random, BigInt(rest), BigInt(denominator)); // never in practice: restart exactly
  return (k & 1) === 1;
}

function bernoulliExpMinusOne(random: RandomWords): boolean {
  let k = 1;
  while (random.bernoulli(1, k)) k++;
  return (k & 1) === 1;
}

/**
 * The discrete Laplace with scale t (a positive integer): P(x) proportional to exp(-|x| / t) on Z (CKS20
 * Algorithm 2 with s = 1): U uniform below t accepted with probability exp(-U/t), plus t times a
 * geometric V with P(V = v) proportional to exp(-v), a fair sign, and "-0" rejected so 0 is not counted twice.
 */
export function discreteLaplace(random: RandomWords, t: number): number {
  if (!Number.isSafeInteger(t) || t < 1 || t > SAFE_DENOMINATOR) throw invalidArgument('INVALID_DP_PARAMETER', `the discrete Laplace scale t must be an integer in [1, 2^43], got ${String(t)}`);
  for (;;) {
    const u = random.below(t);
    if (!bernoulliExpMinusSmall(random, u, t)) continue;
    let v = 0;
    while (bernoulliExpMinusOne(random)) v++;
    const x = u + t * v;
    const negative = (random.word() & 1) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

/** Checks a variance sigma^2 = numerator / denominator and returns t = floor(sigma) + 1 of Algorithm 3. */
function laplaceScale(variance: Rational): number {
  const { numerator, denominator } = variance;
  if (typeof numerator !== 'bigint' || typeof denominator !== 'bigint' || numerator <= 0n || denominator <= 0n) {
    throw invalidArgument('INVALID_DP_PARAMETER', 'the variance must be a positive rational of BigInt numerator and denominator');
  }
  // floor(sigma) = floor(sqrt(numerator / denominator)) = isqrt(floor(numerator / denominator)).
  const t = Number(integerSquareRoot(numerator / denominator)) + 1;
  if (t > SAFE_DENOMINATOR) throw invalidArgument('INVALID_DP_PARAMETER', `the variance ${numerator}/${denominator} is too large (sigma must stay below 2^43)`);
  return t;
}

export function integerSquareRoot(n: bigint): bigint {
  if (n < 0n) throw invalidArgument('INVALID_DP_PARAMETER', 'integerSquareRoot of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/**
 * One draw of N_Z(0, sigma^2), sigma^2 = variance (CKS20 Algorithm 3): Y from the discrete Laplace of
 * scale t = floor(sigma) + 1, kept with probability exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)). With
 * sigma^2 = n/d that exponent is exactly (|Y| t d - n)^2 / (2 t^2 d n).
 */
export function discreteGaussian(random: RandomWords, variance: Rational): number {
  const sampler = new DiscreteGaussianSampler(variance, random);
  return sampler.next();
}

/** Draws N_Z(0, sigma^2) repeatedly with the per-variance constants computed once. */
export class DiscreteGaussianSampler {
  readonly #random: RandomWords;
  readonly #t: number;
  readonly #n: bigint;
  readonly #d: bigint;
  readonly #tBig: bigint;
  readonly #exponentDenominator: bigint;
  /** When every intermediate of the acceptance test is a safe integer: Number arithmetic (fast path). */
  readonly #small: { n: number; d: number; denominator: number } | undefined;
  /** Integer variance n below 2^53 (d = 1): the float-guarded exact path for large sigma. */
  readonly #guarded: { n: number; denominator: number } | undefined;

  constructor(variance: Rational, random: RandomWords = new RandomWords()) {
    this.#random = random;
    this.#t = laplaceScale(variance);
    this.#n = variance.numerator;
    this.#d = variance.denominator;
    this.#tBig = BigInt(this.#t);
    this.#exponentDenominator = 2n * this.#tBig * this.#tBig * this.#d * this.#n;
    // |Y| is below 64 t with overwhelming probability; the fast path handles |Y| up to that bound.
    const bound = 64n * this.#tBig * this.#d + this.#n;
    this.#small = bound * bound <= BigInt(SAFE) && this.#exponentDenominator <= BigInt(SAFE_DENOMINATOR) ? { n: Number(this.#n), d: Number(this.#d), denominator: Number(this.#exponentDenominator) } : undefined;
    this.#guarded = this.#d === 1n && this.#n < BigInt(SAFE) ? { n: Number(this.#n), denominator: Number(this.#exponentDenominator) } : undefined;
  }

  /**
   * Bernoulli(exp(-gamma)) with gamma = a^2 / (2 t^2 n), a = |Y| t - n, decided with doubles wherever
   * that is provably the exact decision, and with BigInt where it is not (probability ~2^-30 per draw).
   * Error budget: a is an exact integer (|Y| t < 2^53, checked); a*a, 2 t^2 n (each factor exact, each
   * product rounded) and the quotient carry at most 6 roundings, so |g - gamma| <= gamma 2^-50 <= 2^-40
   * for gamma <= 2^10 (larger gamma takes the BigInt path). floor(g) is floor(gamma) unless g lies within
   * 2^-30 of an integer (BigInt path then); g - floor(g) is then exact (Sterbenz), so f = frac(gamma) is
   * known to 2^-40. Each Bernoulli(f / K) of Algorithm 1 draws one uniform word w and compares
   * w + u (u the uniform rest, in [0, 1)) with x = f 2^32 / K, known to 2^-7: w + 1 <= x - 2^-7 means
   * accept, w >= x + 2^-7 means reject, and only the band between goes on exactly in BigInt from w.
   */
  #acceptGuarded(magnitude: number): boolean {
    const random = this.#random;
    const { n, denominator } = this.#guarded!;
    const a = magnitude * this.#t - n;
    const gamma = (a * a) / denominator;
    const whole = Math.floor(gamma);
    if (gamma > 1024 || gamma - whole < 2 ** -30 || whole + 1 - gamma < 2 ** -30) {
      const exact = BigInt(a);
      return bernoulliExpMinus(random, exact * exact, this.#exponentDenominator);
    }
    for (let i = 0; i < whole; i++) {
      if (!bernoulliExpMinusOne(random)) return false;
    }
    const fraction = gamma - whole;
    let k = 1;
    for (;;) {
      const x = (fraction * 4294967296) / k;
      const w = random.word();
      let success: boolean;
      if (w + 1 <= x - 2 ** -7) success = true;
      else if (w >= x + 2 ** -7) success = false;
      else {
        const exact = BigInt(a);
        const fractionNumerator = exact * exact - BigInt(whole) * this.#exponentDenominator;
        success = random.bernoulliBigFrom(fractionNumerator, this.#exponentDenominator * BigInt(k), w);
      }
      if (!success) break;
      k++;
    }
    return (k & 1) === 1;
  }

  next(): number {
    const random = this.#random;
    for (;;) {
      const y = discreteLaplace(random, this.#t);
      const magnitude = Math.abs(y);
      let accept: boolean;
      if (this.#small !== undefined && magnitude <= 64 * this.#t) {
        const a = magnitude * this.#t * this.#small.d - this.#small.n;
        accept = bernoulliExpMinusSmall(random, a * a, this.#small.denominator);
      } else if (this.#guarded !== undefined && magnitude * this.#t < SAFE) {
        accept = this.#acceptGuarded(magnitude);
      } else {
        const a = BigInt(magnitude) * this.#tBig * this.#d - this.#n;
        accept = bernoulliExpMinus(random, a * a, this.#exponentDenominator);
      }
      if (accept) return y;
    }
  }

  /** Fills `out` with independent draws. */
  fill(out: Float64Array | Int32Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.next();
  }
}
