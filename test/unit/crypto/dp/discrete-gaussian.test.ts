/**
 * The exact samplers against their exact distributions. Fixed sample sizes, thresholds at the 1e-9 level
 * (test/support/statistics.ts): a correct sampler fails one of these checks with probability ~1e-9 each;
 * the last test shows the chi-square check does reject a plausible wrong sampler (a rounded float Gaussian).
 */
import { describe, expect, it } from 'vitest';
import { RandomSource } from '../../../../crypto/quantize.js';
import { bernoulliExpMinus, discreteLaplace, DiscreteGaussianSampler, integerSquareRoot } from '../../../../crypto/dp/discrete-gaussian.js';
import { RandomWords } from '../../../../crypto/dp/random-words.js';
import { chiSquareAgainstPmf, chiSquareCritical, discreteGaussianPmf, meanAndVariance, Z_1E9 } from '../../../support/statistics.js';

const N = 200_000;

function seeded(label: string): RandomWords {
  return new RandomWords(RandomSource.seeded(new TextEncoder().encode(`dp-sampler-test/${label}`)));
}

describe('exact samplers (Canonne, Kamath, Steinke 2020)', () => {
  it('RandomWords.below is uniform, including above 2^32', () => {
    const random = seeded('below');
    for (const n of [3, 1000, 2 ** 32 + 7, 2 ** 53]) {
      let sum = 0;
      let outside = 0;
      for (let i = 0; i < 50_000; i++) {
        const x = random.below(n);
        if (!(x >= 0 && x < n && Number.isInteger(x))) outside++;
        sum += x / n;
      }
      expect(outside).toBe(0);
      // mean of U/n is (n - 1)/(2n), standard deviation below sqrt(1/12 / 50000)
      expect(Math.abs(sum / 50_000 - (n - 1) / (2 * n))).toBeLessThan(Z_1E9 * Math.sqrt(1 / 12 / 50_000));
    }
  });

  it('bernoulliExpMinus has probability exp(-gamma) on the Number and BigInt paths', () => {
    const random = seeded('bernoulli');
    const cases: [bigint, bigint][] = [[0n, 1n], [1n, 2n], [1n, 1n], [23n, 10n], [7n * 10n ** 30n, 10n ** 31n], [3n * 10n ** 40n, 10n ** 40n]];
    for (const [numerator, denominator] of cases) {
      const p = Math.exp(-Number(numerator) / Number(denominator));
      let hits = 0;
      for (let i = 0; i < N; i++) if (bernoulliExpMinus(random, numerator, denominator)) hits++;
      expect(Math.abs(hits / N - p), `gamma = ${numerator}/${denominator}`).toBeLessThanOrEqual(Z_1E9 * Math.sqrt((p * (1 - p)) / N) + 1e-12);
    }
  });

  it('discreteLaplace follows P(x) ~ exp(-|x|/t) (chi-square)', () => {
    const random = seeded('laplace');
    const t = 3;
    const samples = Int32Array.from({ length: N }, () => discreteLaplace(random, t));
    const normaliser = (1 - Math.exp(-1 / t)) / (1 + Math.exp(-1 / t));
    const pmf = (x: number): number => normaliser * Math.exp(-Math.abs(x) / t);
    const bound = 12;
    let inside = 0;
    for (let x = -bound; x <= bound; x++) inside += pmf(x);
    const { statistic, df } = chiSquareAgainstPmf(samples, pmf, bound, 1 - inside);
    expect(df).toBe(26);
    expect(statistic).toBeLessThan(chiSquareCritical(df));
  });

  for (const [numerator, denominator] of [[3n, 5n], [5n, 2n], [400n, 1n]] as const) {
    it(`discreteGaussian N_Z(0, ${numerator}/${denominator}) matches the exact pmf, mean and variance`, () => {
      const variance = Number(numerator) / Number(denominator);
      const sampler = new DiscreteGaussianSampler({ numerator, denominator }, seeded(`gauss/${numerator}/${denominator}`));
      const samples = new Float64Array(N);
      sampler.fill(samples);
      const exact = discreteGaussianPmf(variance);
      const stats = meanAndVariance(samples);
      expect(Math.abs(stats.mean)).toBeLessThan(Z_1E9 * Math.sqrt(exact.variance / N));
      // var of the sample variance ~ 2 sigma^4 / N for a Gaussian-like law
      expect(Math.abs(stats.variance - exact.variance)).toBeLessThan(Z_1E9 * exact.variance * Math.sqrt(2 / N) * 1.05);
      const bound = Math.ceil(Math.sqrt(variance) * 2.5);
      const { statistic, df } = chiSquareAgainstPmf(samples, exact.pmf, bound, exact.tail(bound));
      expect(statistic, `df ${df}`).toBeLessThan(chiSquareCritical(df));
    });
  }

  for (const [path, numerator, denominator] of [['float-guarded', 10n ** 14n + 12345n, 1n], ['BigInt', 10n ** 14n + 1n, 3n]] as const) {
  it(`a huge variance (the ${path} path) has mean 0, variance sigma^2 and a Gaussian bulk`, () => {
    const sampler = new DiscreteGaussianSampler({ numerator, denominator }, seeded(`gauss/huge/${path}`));
    const samples = new Float64Array(100_000);
    sampler.fill(samples);
    const stats = meanAndVariance(samples);
    const v = Number(numerator) / Number(denominator);
    expect(Math.abs(stats.mean)).toBeLessThan(Z_1E9 * Math.sqrt(v / samples.length));
    expect(Math.abs(stats.variance - v)).toBeLessThan(Z_1E9 * v * Math.sqrt(2 / samples.length) * 1.05);
    // the fraction inside one sigma is that of a Gaussian (0.6827), as a binomial proportion
    const inside = samples.filter((x) => Math.abs(x) <= Math.sqrt(v)).length / samples.length;
    expect(Math.abs(inside - 0.682689)).toBeLessThan(Z_1E9 * Math.sqrt((0.6827 * 0.3173) / samples.length));
  });
  }

  it('bernoulliBigFrom continues the exact comparison from a given first word (the guarded path\'s fallback)', () => {
    const random = seeded('from');
    // p = 1/3: first base-2^32 digit is floor(2^32 / 3) = 1431655765
    const digit = Math.floor(2 ** 32 / 3);
    expect(random.bernoulliBigFrom(1n, 3n, digit - 1)).toBe(true);
    expect(random.bernoulliBigFrom(1n, 3n, digit + 1)).toBe(false);
    let hits = 0;
    for (let i = 0; i < 20_000; i++) if (random.bernoulliBigFrom(1n, 3n, digit)) hits++;
    // given the first digit ties, the rest decides with probability frac(2^32/3) = 1/3
    expect(Math.abs(hits / 20_000 - 1 / 3)).toBeLessThan(Z_1E9 * Math.sqrt((2 / 9) / 20_000));
  });

  it('the chi-square check rejects a rounded float Gaussian at sigma^2 = 3/5 (the check has power)', () => {
    const random = seeded('wrong');
    const samples = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const u1 = (random.word() + 1) / 2 ** 32;
      const u2 = random.word() / 2 ** 32;
      samples[i] = Math.round(Math.sqrt(0.6) * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    const exact = discreteGaussianPmf(0.6);
    const { statistic, df } = chiSquareAgainstPmf(samples, exact.pmf, 2, exact.tail(2));
    expect(statistic).toBeGreaterThan(chiSquareCritical(df) * 10);
  });

  it('refuses bad parameters', () => {
    const random = seeded('bad');
    expect(() => discreteLaplace(random, 0)).toThrow(/scale t/);
    expect(() => new DiscreteGaussianSampler({ numerator: 0n, denominator: 1n }, random)).toThrow(/positive rational/);
    expect(() => bernoulliExpMinus(random, -1n, 1n)).toThrow(/numerator >= 0/);
    expect(integerSquareRoot(10n ** 30n + 5n)).toBe(10n ** 15n);
  });
});
