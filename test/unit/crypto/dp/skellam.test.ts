/**
 * The Skellam mechanism (Agarwal, Kairouz, Liu 2021): the exact Poisson and Skellam samplers (moments,
 * chi-square against the pmf), and the RDP bound - its value at a few points of the paper's formula, and
 * that it is an upper bound of the exact Renyi divergence between Sk(mu) and Sk(mu) shifted by one,
 * computed here in log space from the pmf. Seeded randomness, thresholds at the 1e-9 level.
 */
import { describe, expect, it } from 'vitest';
import { RandomWords } from '../../../../crypto/dp/random-words.js';
import { MAX_SKELLAM_MEAN, distributedSkellamRdp, fillSkellam, poisson, skellam, skellamRdp } from '../../../../crypto/dp/skellam.js';
import { RandomSource } from '../../../../crypto/quantize.js';
import { Z_1E9, chiSquareAgainstPmf, chiSquareCritical, meanAndVariance } from '../../../support/statistics.js';

const seeded = (label: string): RandomWords => new RandomWords(RandomSource.seeded(new TextEncoder().encode(`skellam/${label}`)));
const rational = (numerator: number, denominator = 1) => ({ numerator: BigInt(numerator), denominator: BigInt(denominator) });

/** log pmf of Poisson(mu) at 0..n. */
function poissonLogPmf(mu: number, n: number): Float64Array {
  const out = new Float64Array(n + 1);
  let logFactorial = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logFactorial += Math.log(k);
    out[k] = -mu + k * Math.log(mu) - logFactorial;
  }
  return out;
}

function logSumExp(values: readonly number[]): number {
  const top = Math.max(...values);
  return top + Math.log(values.reduce((sum, v) => sum + Math.exp(v - top), 0));
}

/** log pmf of Sk(mu) on [-reach, reach], by convolving the two Poisson pmfs. */
function skellamLogPmf(mu: number): { reach: number; logPmf: (k: number) => number } {
  const n = Math.ceil(mu + 40 * Math.sqrt(mu) + 60);
  const poissonPmf = poissonLogPmf(mu, 2 * n);
  const reach = n;
  const table = new Map<number, number>();
  for (let k = -reach; k <= reach; k++) {
    const terms: number[] = [];
    for (let j = 0; j <= n; j++) terms.push(poissonPmf[j + Math.abs(k)]! + poissonPmf[j]!);
    table.set(k, logSumExp(terms));
  }
  return { reach, logPmf: (k) => table.get(k) ?? -Infinity };
}

/** D_alpha(Sk(mu) || Sk(mu) + 1), exactly up to the truncated tails. */
function exactRenyi(mu: number, alpha: number): number {
  const { reach, logPmf } = skellamLogPmf(mu);
  const terms: number[] = [];
  for (let k = -reach + 1; k <= reach; k++) terms.push(alpha * logPmf(k) + (1 - alpha) * logPmf(k - 1));
  return logSumExp(terms) / (alpha - 1);
}

describe('exact Poisson and Skellam samplers', () => {
  it.each([
    [3, 10],
    [1, 1],
    [7, 3],
    [25, 2],
  ])('Poisson(%i/%i) has mean and variance lambda', (numerator, denominator) => {
    const random = seeded(`poisson-${numerator}-${denominator}`);
    const lambda = numerator / denominator;
    const samples = Array.from({ length: 20_000 }, () => poisson(random, rational(numerator, denominator)));
    expect(samples.every((x) => Number.isInteger(x) && x >= 0)).toBe(true);
    const { mean, variance } = meanAndVariance(samples);
    expect(Math.abs(mean - lambda)).toBeLessThan(Z_1E9 * Math.sqrt(lambda / samples.length));
    // Var of the sample variance of a Poisson: (mu4 - sigma^4) / n with mu4 = lambda (1 + 3 lambda).
    expect(Math.abs(variance - lambda)).toBeLessThan(Z_1E9 * Math.sqrt((lambda * (1 + 3 * lambda) - lambda * lambda) / samples.length));
  });

  it('Sk(5/2) matches its pmf (chi-square) with mean 0 and variance 2 mu', () => {
    const mu = 2.5;
    const random = seeded('skellam-chi');
    const samples = new Float64Array(40_000);
    fillSkellam(samples, rational(5, 2), random);
    const { logPmf } = skellamLogPmf(mu);
    const pmf = (k: number): number => Math.exp(logPmf(k));
    const bound = 8;
    let inside = 0;
    for (let k = -bound; k <= bound; k++) inside += pmf(k);
    const { statistic, df } = chiSquareAgainstPmf(samples, pmf, bound, 1 - inside);
    expect(statistic).toBeLessThan(chiSquareCritical(df));
    const { mean, variance } = meanAndVariance(samples);
    expect(Math.abs(mean)).toBeLessThan(Z_1E9 * Math.sqrt((2 * mu) / samples.length));
    expect(Math.abs(variance - 2 * mu)).toBeLessThan(Z_1E9 * 2 * mu * Math.sqrt(3 / samples.length));
  });

  it('a sum of shares is the Skellam of the summed mean (variance n x 2 mu)', () => {
    const random = seeded('skellam-sum');
    const shares = 5;
    const samples = Array.from({ length: 20_000 }, () => {
      let sum = 0;
      for (let i = 0; i < shares; i++) sum += skellam(random, rational(3, 2));
      return sum;
    });
    const { variance } = meanAndVariance(samples);
    expect(Math.abs(variance - shares * 3)).toBeLessThan(Z_1E9 * shares * 3 * Math.sqrt(3 / samples.length));
  });

  it('refuses means it cannot sample exactly in reasonable time, and malformed ones', () => {
    const random = seeded('refuse');
    expect(() => poisson(random, rational(MAX_SKELLAM_MEAN + 1))).toThrow(/O\(mean\)/);
    expect(() => poisson(random, { numerator: -1n, denominator: 1n })).toThrow(/non-negative rational/);
    expect(() => poisson(random, { numerator: 1n, denominator: 0n })).toThrow(/non-negative rational/);
    expect(poisson(random, rational(0))).toBe(0);
  });
});

describe('Skellam RDP (AKL21)', () => {
  it("evaluates the paper's formula", () => {
    // alpha D2^2 / (4 mu) + min(((2 alpha - 1) D2^2 + 6 D1) / (16 mu^2), 3 D1 / (4 mu)), by hand:
    // mu = 5, D1 = D2 = 1, alpha = 2: 0.1 + min(9 / 400, 0.15) = 0.1225
    // mu = 1, alpha = 8: 2 + min(21 / 16, 0.75) = 2.75
    // mu = 100, D1 = 30, D2 = 2, alpha = 4: 0.04 + min((28 + 180) / 160000, 0.225) = 0.0413
    expect(skellamRdp(5, 1, 1, [2]).rdp[0]).toBeCloseTo(0.1225, 12);
    expect(skellamRdp(1, 1, 1, [8]).rdp[0]).toBeCloseTo(2.75, 12);
    expect(skellamRdp(100, 30, 2, [4]).rdp[0]).toBeCloseTo(0.0413, 12);
  });

  it.each([1, 5, 20, 100])('bounds the exact Renyi divergence of a unit shift at mu = %i, and approaches the Gaussian as mu grows', (mu) => {
    for (const alpha of [1.5, 2, 8, 32]) {
      const exact = exactRenyi(mu, alpha);
      const bound = skellamRdp(mu, 1, 1, [alpha]).rdp[0]!;
      expect(bound, `alpha ${alpha}`).toBeGreaterThanOrEqual(exact * (1 - 1e-9));
      // Never below the Gaussian of the same variance, which the Skellam approaches.
      expect(bound).toBeGreaterThanOrEqual(alpha / (4 * mu));
    }
    if (mu === 100) expect(skellamRdp(mu, 1, 1, [2]).rdp[0]! / exactRenyi(mu, 2)).toBeLessThan(1.02);
  });

  it('a sum of honest shares is accounted as one Skellam of the summed mean', () => {
    expect(distributedSkellamRdp(10, 6, 3, 1, [2, 8]).rdp).toEqual(skellamRdp(60, 3, 1, [2, 8]).rdp);
    expect(() => distributedSkellamRdp(10, 0, 1, 1)).toThrow(/honestShares/);
    expect(() => skellamRdp(0, 1, 1)).toThrow(/mean/);
  });
});
