/**
 * Distributed DP encoding (Kairouz, Liu, Steinke 2021). Statistical checks use fixed sizes, seeded
 * randomness and thresholds at the 1e-9 level (test/support/statistics.ts).
 */
import { describe, expect, it } from 'vitest';
import { RandomSource } from '../../../../crypto/quantize.js';
import {
  bitsForWrapProbability,
  compileDistributedDp,
  decodeDistributedDp,
  distributedDpRdp,
  distributedSensitivity,
  encodeDistributedDp,
  integerContribution,
  roundedRotatedUpdate,
  toRing,
  wrapProbabilityBound,
  type DistributedDpParams,
} from '../../../../crypto/dp/distributed-dp.js';
import { paddedDimension, rotate, rotationSigns, unrotate, walshHadamard } from '../../../../crypto/dp/hadamard.js';
import { RandomWords } from '../../../../crypto/dp/random-words.js';
import { gaussianRdp } from '../../../../crypto/dp/rdp.js';
import { meanAndVariance, Z_1E9 } from '../../../support/statistics.js';

const bytes = (label: string): Uint8Array => new TextEncoder().encode(label);
const seeded = (label: string): RandomWords => new RandomWords(RandomSource.seeded(bytes(`distributed-dp/${label}`)));

function sumWords(vectors: readonly Uint32Array[]): Uint32Array {
  const sum = new Uint32Array(vectors[0]!.length);
  for (const vector of vectors) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i]! + vector[i]!) >>> 0; // SecAgg's ring
  return sum;
}

function randomVector(random: RandomWords, d: number, norm: number): Float64Array {
  const x = Float64Array.from({ length: d }, () => random.word() / 2 ** 32 - 0.5);
  const scale = norm / Math.hypot(...x);
  return x.map((v) => v * scale);
}

const base = (overrides: Partial<DistributedDpParams> = {}): DistributedDpParams => ({
  clipNorm: 1,
  dimension: 1000,
  scale: 64,
  ringBits: 32,
  targetNoiseStd: 0.5,
  minSurvivors: 8,
  toleratedColluders: 2,
  rotationSeed: bytes('round-seed'),
  ...overrides,
});

describe('randomized Hadamard rotation', () => {
  it('is an isometry and rotate/unrotate are inverse (padding to a power of two)', () => {
    const random = seeded('rotation');
    const x = randomVector(random, 1000, 3.7);
    const signs = rotationSigns(bytes('seed'), paddedDimension(1000));
    expect(signs.length).toBe(1024);
    const y = rotate(x, signs);
    expect(Math.hypot(...y)).toBeCloseTo(3.7, 10);
    const back = unrotate(y, signs, 1000);
    for (let i = 0; i < 1000; i++) expect(back[i]).toBeCloseTo(x[i]!, 12);
  });

  it('derives the same signs from the same public seed and different ones from another, about half negative', () => {
    const a = rotationSigns(bytes('seed-a'), 4096);
    expect(rotationSigns(bytes('seed-a'), 4096)).toEqual(a);
    expect(rotationSigns(bytes('seed-b'), 4096)).not.toEqual(a);
    const negatives = a.filter((s) => s < 0).length;
    expect(Math.abs(negatives - 2048)).toBeLessThan(Z_1E9 * 32);
  });

  it('refuses lengths that are not powers of two', () => {
    expect(() => walshHadamard(new Float64Array(12))).toThrow(/power-of-two/);
  });
});

describe('distributed discrete Gaussian encoding', () => {
  it('splits the target variance so that t - colluders honest shares carry at least all of it', () => {
    const compiled = compileDistributedDp(base());
    expect(compiled.honestShares).toBe(6);
    expect(compiled.perSiteVariance).toBe(BigInt(Math.ceil((64 * 0.5) ** 2 / 6)));
    expect(Number(compiled.perSiteVariance) * 6).toBeGreaterThanOrEqual((64 * 0.5) ** 2);
  });

  it('the sum of the honest shares has the target noise variance (zero updates, 1e-9 thresholds)', () => {
    const compiled = compileDistributedDp(base());
    const random = seeded('variance');
    const ringSamples: number[] = [];
    const modelSamples: number[] = [];
    for (let round = 0; round < 10; round++) {
      const words = Array.from({ length: compiled.honestShares }, () => encodeDistributedDp(compiled, new Float64Array(1000), random));
      const sum = sumWords(words);
      for (const word of sum) ringSamples.push(word >= 2 ** 31 ? word - 2 ** 32 : word);
      modelSamples.push(...decodeDistributedDp(compiled, sum));
    }
    const expected = Number(compiled.perSiteVariance) * compiled.honestShares;
    const ring = meanAndVariance(ringSamples);
    expect(Math.abs(ring.mean)).toBeLessThan(Z_1E9 * Math.sqrt(expected / ringSamples.length));
    expect(Math.abs(ring.variance - expected)).toBeLessThan(Z_1E9 * expected * Math.sqrt(2 / ringSamples.length) * 1.05);
    // in model units, after unscaling and the inverse rotation: targetNoiseStd^2 (up to the ceil)
    const model = meanAndVariance(modelSamples);
    const expectedModel = expected / 64 ** 2;
    expect(expectedModel).toBeGreaterThanOrEqual(0.25);
    expect(Math.abs(model.variance - expectedModel)).toBeLessThan(Z_1E9 * expectedModel * Math.sqrt(2 / modelSamples.length) * 1.05);
  });

  it('keeps every rounded vector within the conditional-rounding norm bound', () => {
    const compiled = compileDistributedDp(base({ scale: 8 }));
    const random = seeded('rounding');
    for (let i = 0; i < 50; i++) {
      const rounded = roundedRotatedUpdate(compiled, randomVector(random, 1000, 5), random);
      expect(rounded.reduce((sum, v) => sum + v * v, 0)).toBeLessThanOrEqual(compiled.roundedNormSquaredBound);
      expect(rounded.every((v) => Number.isInteger(v))).toBe(true);
    }
    expect(distributedSensitivity(compiled)).toBeLessThanOrEqual(8 + Math.sqrt(1024));
  });

  it('decodes an unbiased sum: the mean over rounds of the decoded mean is the true mean (coarse grid)', () => {
    const d = 8;
    const random = seeded('unbiased');
    const updates = [randomVector(random, d, 0.9), randomVector(random, d, 0.5), randomVector(random, d, 0.7)];
    const truth = Float64Array.from({ length: d }, (_, i) => updates.reduce((sum, u) => sum + u[i]!, 0) / 3);
    const trials = 3000;
    const errors = Array.from({ length: d }, () => new Float64Array(trials));
    for (let trial = 0; trial < trials; trial++) {
      const compiled = compileDistributedDp(base({ dimension: d, scale: 4, targetNoiseStd: 0.5, minSurvivors: 3, toleratedColluders: 0, rotationSeed: bytes(`round-${trial}`) }));
      const decoded = decodeDistributedDp(compiled, sumWords(updates.map((u) => encodeDistributedDp(compiled, u, random))));
      for (let i = 0; i < d; i++) errors[i]![trial] = decoded[i]! / 3 - truth[i]!;
    }
    for (let i = 0; i < d; i++) {
      const { mean, variance } = meanAndVariance(errors[i]!);
      expect(Math.abs(mean), `coordinate ${i}`).toBeLessThan(Z_1E9 * Math.sqrt(variance / trials));
    }
  });

  it('wraps no more often than wrapProbabilityBound says, and decodes exactly when it does not wrap', () => {
    const params = base({ dimension: 64, scale: 16, targetNoiseStd: 1, minSurvivors: 4, toleratedColluders: 0 });
    const random = seeded('wrap');
    const n = 4;
    const trials = 300;
    for (const bits of [6, 7, 8]) {
      const compiled = compileDistributedDp({ ...params, ringBits: bits });
      const bound = wrapProbabilityBound(compiled, n);
      let wraps = 0;
      for (let trial = 0; trial < trials; trial++) {
        const contributions = Array.from({ length: n }, () => integerContribution(compiled, randomVector(random, 64, 1), random));
        const exact = new Float64Array(64);
        for (const c of contributions) for (let i = 0; i < 64; i++) exact[i]! += c[i]!;
        const wrapped = exact.some((v) => v < -(2 ** (bits - 1)) || v >= 2 ** (bits - 1));
        if (wrapped) wraps++;
        else {
          const sum = sumWords(contributions.map((c) => toRing(compiled, c)));
          const modulus = 2 ** bits;
          for (let i = 0; i < 64; i++) {
            const residue = sum[i]! % modulus;
            expect(residue >= modulus / 2 ? residue - modulus : residue).toBe(exact[i]);
          }
        }
      }
      const rate = wraps / trials;
      expect(rate, `b = ${bits}: bound ${bound}`).toBeLessThanOrEqual(bound + Z_1E9 * Math.sqrt((bound * (1 - bound)) / trials));
      if (bits === 6) expect(wraps).toBeGreaterThan(0); // the simulation does see wraps when the ring is too small
    }
    expect(wrapProbabilityBound(compileDistributedDp({ ...params, ringBits: 7 }), n)).toBeLessThan(0.6);
    const bits = bitsForWrapProbability(params, n, 1e-9);
    expect(bits).toBeDefined();
    expect(wrapProbabilityBound(compileDistributedDp({ ...params, ringBits: bits! }), n)).toBeLessThanOrEqual(1e-9);
    expect(wrapProbabilityBound(compileDistributedDp({ ...params, ringBits: bits! - 1 }), n)).toBeGreaterThan(1e-9);
  });

  it('accounts the sum as the Gaussian of variance n s^2 when tau is negligible, and charges more when it is not', () => {
    const compiled = compileDistributedDp(base());
    const curve = distributedDpRdp(compiled, [2, 8, 32]);
    const gaussian = gaussianRdp(Math.sqrt(Number(compiled.perSiteVariance) * compiled.honestShares), distributedSensitivity(compiled), [2, 8, 32]);
    curve.rdp.forEach((value, i) => expect(value / gaussian.rdp[i]!).toBeCloseTo(1, 9));
    const tiny = compileDistributedDp(base({ scale: 1, targetNoiseStd: 1, dimension: 4096, minSurvivors: 50, toleratedColluders: 0 }));
    const tinyCurve = distributedDpRdp(tiny, [2]);
    const tinyGaussian = gaussianRdp(Math.sqrt(Number(tiny.perSiteVariance) * tiny.honestShares), distributedSensitivity(tiny), [2]);
    expect(tinyCurve.rdp[0]!).toBeGreaterThan(tinyGaussian.rdp[0]! * 1.01);
  });

  it('refuses parameters it cannot honour', () => {
    expect(() => compileDistributedDp(base({ ringBits: 33 }))).toThrow(/ringBits/);
    expect(() => compileDistributedDp(base({ toleratedColluders: 8 }))).toThrow(/toleratedColluders/);
    expect(() => compileDistributedDp(base({ clipNorm: 0 }))).toThrow(/clipNorm/);
    const compiled = compileDistributedDp(base());
    expect(() => encodeDistributedDp(compiled, new Float64Array(999))).toThrow(/d = 1000/);
    expect(() => decodeDistributedDp(compiled, new Uint32Array(1000))).toThrow(/D = 1024/);
  });
});
