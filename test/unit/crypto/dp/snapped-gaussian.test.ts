import { describe, expect, it } from 'vitest';
import { RandomSource } from '../../../../crypto/quantize.js';
import { RandomWords } from '../../../../crypto/dp/random-words.js';
import { addSnappedGaussianNoise, snappedDpSgdStepRdp, snappedSensitivity, snappedVariance } from '../../../../crypto/dp/snapped-gaussian.js';
import { INTEGER_ORDERS, rdpToEpsilon, subsampledGaussianRdp, composeSteps } from '../../../../crypto/dp/rdp.js';
import { meanAndVariance, Z_1E9 } from '../../../support/statistics.js';

const random = (label: string): RandomWords => new RandomWords(RandomSource.seeded(new TextEncoder().encode(`snapped/${label}`)));

describe('snapped Gaussian noise for DP-SGD', () => {
  it('adds noise of the requested standard deviation with mean 0 (thresholds at the 1e-9 level)', () => {
    const values = new Float64Array(100_000);
    addSnappedGaussianNoise(values, { noiseStd: 1.5, gridExponent: 20, random: random('moments') });
    const stats = meanAndVariance(values);
    const variance = Number(snappedVariance(1.5, 20)) * 2 ** -40;
    expect(variance).toBeGreaterThanOrEqual(1.5 * 1.5);
    expect(Math.abs(stats.mean)).toBeLessThan(Z_1E9 * Math.sqrt(variance / values.length));
    expect(Math.abs(stats.variance - variance)).toBeLessThan(Z_1E9 * variance * Math.sqrt(2 / values.length) * 1.05);
  });

  it('releases exact multiples of 2^-k around the snapped signal', () => {
    const values = Float64Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const original = Float64Array.from(values);
    addSnappedGaussianNoise(values, { noiseStd: 0.01, gridExponent: 24, random: random('grid') });
    for (let i = 0; i < values.length; i++) {
      expect(Number.isInteger(values[i]! * 2 ** 24)).toBe(true);
      expect(Math.abs(values[i]! - original[i]!)).toBeLessThan(0.01 * 8);
    }
  });

  it('writes float32 targets (post-processing of the exact value) and refuses NaN and out-of-grid values', () => {
    const values = new Float32Array([0.25, -1, 2]);
    addSnappedGaussianNoise(values, { noiseStd: 0.5, random: random('f32') });
    expect(values.every((v) => Number.isFinite(v))).toBe(true);
    expect(() => addSnappedGaussianNoise(new Float64Array([NaN]), { noiseStd: 1 })).toThrow(/values\[0\]/);
    expect(() => addSnappedGaussianNoise(new Float64Array([2 ** 40]), { noiseStd: 1, gridExponent: 24 })).toThrow(/too large/);
    expect(() => snappedVariance(0)).toThrow(/noiseStd/);
  });

  it('rounds the variance up and inflates the sensitivity by sqrt(d) 2^-k', () => {
    expect(snappedVariance(1, 3)).toBe(64n);
    expect(snappedVariance(1.01, 3)).toBe(81n); // ceil(8.08)^2
    expect(snappedSensitivity(1, 10_000, 10)).toBeCloseTo(1 + 100 / 1024, 12);
  });

  it('accounts a snapped DP-SGD step on integer orders with the inflated sensitivity', () => {
    const curve = snappedDpSgdStepRdp({ q: 0.01, sigma: 1.1, clipNorm: 1, dimension: 61_706 });
    expect(curve.orders).toEqual(INTEGER_ORDERS);
    const plain = subsampledGaussianRdp(0.01, 1.1, INTEGER_ORDERS);
    curve.rdp.forEach((value, i) => expect(value).toBeGreaterThanOrEqual(plain.rdp[i]!));
    // at 2^-24 the inflation is ~1.5e-5 of C: the epsilon barely moves
    const eps = rdpToEpsilon(composeSteps(curve, 1000), 1e-5).epsilon;
    const plainEps = rdpToEpsilon(composeSteps(plain, 1000), 1e-5).epsilon;
    expect(eps / plainEps - 1).toBeLessThan(1e-3);
    expect(eps).toBeGreaterThan(plainEps);
  });
});
