/**
 * The Skellam mechanism (Agarwal, Kairouz, Liu 2021, "The Skellam Mechanism for Differentially Private
 * Federated Learning"): integer noise Sk(mu) = Poisson(mu) - Poisson(mu), variance 2 mu, closed under
 * summation (n sites adding Sk(mu) each give exactly Sk(n mu)), which makes the accounting of a sum of
 * noise shares exact where the discrete Gaussian's needs the tau correction.
 *
 * Sampler: exact, from uniform words only (crypto/dp/random-words.ts, node:crypto by default); no float
 * ever decides an outcome. Poisson(lambda) for a rational lambda <= 1 is a rejection sampler with a
 * geometric proposal: K with P(K = k) = (1 - rho) rho^k, rho = lambda / 2 (counting Bernoulli(rho)
 * successes), accepted with probability 2^(k-1) / k! (<= 1 for every k). The accepted K has
 * P(k) proportional to (lambda/2)^k 2^k / k! = lambda^k / k!: exactly Poisson(lambda); the expected number
 * of proposals is 2 e^-lambda / (1 - lambda/2) <= 2. A larger mean is split into floor(mu) draws of
 * Poisson(1) and one of Poisson(frac(mu)) (a sum of independent Poissons is Poisson of the summed mean).
 * The cost is therefore O(mu) per draw: exact and cheap for the small means of tests and small rings,
 * but not for the per-site variances of a federated round at 16 to 32 ring bits (10^6 and more per
 * coordinate), which is why rounds use the distributed discrete Gaussian (distributed-dp.ts) and the
 * sampler refuses means above MAX_SKELLAM_MEAN. An exact sampler for large means (a rejection sampler
 * with rigorous float guards on log-factorial ratios, as discrete-gaussian.ts does for its exponent) is
 * what wiring Skellam into rounds would take.
 */
import { invalidArgument } from '../errors.js';
import type { Rational } from './discrete-gaussian.js';
import { RandomWords } from './random-words.js';
import { DEFAULT_ORDERS, checkOrders, type RdpCurve } from './rdp.js';

/** Largest Poisson mean the O(mu) sampler accepts. */
export const MAX_SKELLAM_MEAN = 2 ** 20;

const SAFE = 2 ** 53;

/** k! as a Number while exact (k <= 18), else undefined. */
function smallFactorial(k: number): number | undefined {
  if (k > 18) return undefined;
  let f = 1;
  for (let i = 2; i <= k; i++) f *= i;
  return f;
}

/** True with probability exactly 2^(k-1) / k! (<= 1 for every k >= 0). */
function acceptGeometric(random: RandomWords, k: number): boolean {
  if (k === 0) return random.bernoulli(1, 2);
  const factorial = smallFactorial(k);
  if (factorial !== undefined) return random.bernoulli(2 ** (k - 1), factorial);
  let big = 1n;
  for (let i = 2n; i <= BigInt(k); i++) big *= i;
  return random.bernoulliBig(1n << BigInt(k - 1), big);
}

/** True with probability numerator / denominator for BigInt rationals (Number path when exact). */
function bernoulliRational(random: RandomWords, numerator: bigint, denominator: bigint): boolean {
  if (denominator <= BigInt(SAFE)) return random.bernoulli(Number(numerator), Number(denominator));
  return random.bernoulliBig(numerator, denominator);
}

/** One draw of Poisson(numerator / denominator) for 0 <= numerator <= denominator (lambda <= 1). */
function poissonAtMostOne(random: RandomWords, numerator: bigint, denominator: bigint): number {
  if (numerator === 0n) return 0;
  // rho = lambda / 2 = numerator / (2 denominator).
  const rhoDenominator = 2n * denominator;
  for (;;) {
    let k = 0;
    while (bernoulliRational(random, numerator, rhoDenominator)) k++;
    if (acceptGeometric(random, k)) return k;
  }
}

function checkMean(mean: Rational): void {
  const { numerator, denominator } = mean;
  if (typeof numerator !== 'bigint' || typeof denominator !== 'bigint' || numerator < 0n || denominator <= 0n) {
    throw invalidArgument('INVALID_DP_PARAMETER', 'the Poisson mean must be a non-negative rational of BigInt numerator and denominator > 0');
  }
  if (numerator / denominator > BigInt(MAX_SKELLAM_MEAN)) {
    throw invalidArgument('INVALID_DP_PARAMETER', `the Poisson mean ${numerator}/${denominator} is above ${MAX_SKELLAM_MEAN}: the exact sampler takes O(mean) time per draw`);
  }
}

/** One exact draw of Poisson(mean), mean = numerator / denominator <= MAX_SKELLAM_MEAN. */
export function poisson(random: RandomWords, mean: Rational): number {
  checkMean(mean);
  const whole = mean.numerator / mean.denominator;
  let total = 0;
  for (let i = 0n; i < whole; i++) total += poissonAtMostOne(random, 1n, 1n);
  return total + poissonAtMostOne(random, mean.numerator - whole * mean.denominator, mean.denominator);
}

/** One exact draw of Sk(mu) = Poisson(mu) - Poisson(mu): variance 2 mu. */
export function skellam(random: RandomWords, mean: Rational): number {
  return poisson(random, mean) - poisson(random, mean);
}

/** Fills `out` with independent Sk(mean) draws. */
export function fillSkellam(out: Float64Array | Int32Array, mean: Rational, random: RandomWords = new RandomWords()): void {
  checkMean(mean);
  for (let i = 0; i < out.length; i++) out[i] = skellam(random, mean);
}

/**
 * RDP of the multidimensional Skellam mechanism (AKL21, the theorem on its Renyi divergence): adding
 * independent Sk(mu) to each coordinate of an integer vector whose L1 and L2 sensitivities are Delta1 and
 * Delta2 gives, at every order alpha > 1,
 *   RDP(alpha) <= alpha Delta2^2 / (4 mu) + min( ((2 alpha - 1) Delta2^2 + 6 Delta1) / (16 mu^2), 3 Delta1 / (4 mu) ),
 * mu the mean of each Poisson (the noise variance is 2 mu; the first term is the Gaussian's
 * alpha Delta2^2 / (2 variance)). Sensitivities in the same integer units as the noise.
 */
export function skellamRdp(mean: number, l1Sensitivity: number, l2Sensitivity: number, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  for (const [name, value] of [['mean', mean], ['l1Sensitivity', l1Sensitivity], ['l2Sensitivity', l2Sensitivity]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArgument('INVALID_DP_PARAMETER', `${name} must be a finite number > 0, got ${String(value)}`);
  }
  checkOrders(orders);
  const d1 = l1Sensitivity;
  const d2squared = l2Sensitivity * l2Sensitivity;
  const rdp = orders.map((alpha) => (alpha * d2squared) / (4 * mean) + Math.min(((2 * alpha - 1) * d2squared + 6 * d1) / (16 * mean * mean), (3 * d1) / (4 * mean)));
  return { orders: [...orders], rdp };
}

/**
 * The curve of a sum of Skellam shares: `honestShares` sites adding Sk(perSiteMean) each give exactly
 * Sk(honestShares x perSiteMean) (closure under summation), so the sum is one Skellam mechanism.
 */
export function distributedSkellamRdp(perSiteMean: number, honestShares: number, l1Sensitivity: number, l2Sensitivity: number, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  if (!Number.isSafeInteger(honestShares) || honestShares < 1) throw invalidArgument('INVALID_DP_PARAMETER', `honestShares must be a positive integer, got ${String(honestShares)}`);
  return skellamRdp(perSiteMean * honestShares, l1Sensitivity, l2Sensitivity, orders);
}
