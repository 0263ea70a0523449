import { describe, expect, it } from 'vitest';
import { dpSgdRoundRdp, dpSgdRoundsEpsilon } from '../../../../crypto/dp/dp-sgd-round.js';
import { dpSgdEpsilon, INTEGER_ORDERS } from '../../../../crypto/dp/rdp.js';
import { snappedSensitivity } from '../../../../crypto/dp/snapped-gaussian.js';

/** Abadi et al. 2016's case as 100 rounds of 100 steps, for a model of 60,000 parameters. */
const ROUND = { clipNorm: 1, noiseMultiplier: 4, samplingRate: 0.01, stepsPerRound: 100, dimension: 60_000 };

describe('dpSgdRoundRdp: the curve a round of record-level DP-SGD charges, from the public parameters', () => {
  it('is dpSgdEpsilon of rounds x stepsPerRound snapped steps (noise multiplier sigma C / snapped sensitivity, integer orders)', () => {
    const effectiveSigma = (ROUND.noiseMultiplier * ROUND.clipNorm) / snappedSensitivity(ROUND.clipNorm, ROUND.dimension);
    for (const rounds of [1, 7, 100]) {
      const expected = dpSgdEpsilon({ q: ROUND.samplingRate, sigma: effectiveSigma, steps: rounds * ROUND.stepsPerRound, delta: 1e-5, orders: INTEGER_ORDERS });
      expect(dpSgdRoundsEpsilon(ROUND, rounds, 1e-5)).toBeCloseTo(expected, 10);
    }
  });

  it('never charges less than the continuous Gaussian at the same (q, sigma, steps, delta), and stays within 2% of it (Abadi: ~1.26)', () => {
    for (const [rounds, delta] of [[100, 1e-5], [10, 1e-6], [1, 1e-3]] as const) {
      const continuous = dpSgdEpsilon({ q: ROUND.samplingRate, sigma: ROUND.noiseMultiplier, steps: rounds * ROUND.stepsPerRound, delta });
      const charged = dpSgdRoundsEpsilon(ROUND, rounds, delta);
      expect(charged).toBeGreaterThanOrEqual(continuous);
      expect((charged - continuous) / continuous).toBeLessThan(0.02);
    }
    expect(Math.abs(dpSgdRoundsEpsilon(ROUND, 100, 1e-5) - 1.26) / 1.26).toBeLessThan(0.03);
  });

  it('grows with the model dimension (the snapping grid adds sqrt(d) 2^-24 to the sensitivity)', () => {
    const small = dpSgdRoundsEpsilon({ ...ROUND, dimension: 1 }, 10, 1e-5);
    const huge = dpSgdRoundsEpsilon({ ...ROUND, dimension: 1e12 }, 10, 1e-5);
    expect(huge).toBeGreaterThan(small * 1.01);
  });

  it('is bounded on integer orders only and composes stepsPerRound steps', () => {
    const curve = dpSgdRoundRdp(ROUND);
    expect(curve.orders).toEqual(INTEGER_ORDERS);
    const one = dpSgdRoundRdp({ ...ROUND, stepsPerRound: 1 });
    curve.rdp.forEach((value, i) => expect(value).toBeCloseTo(one.rdp[i]! * ROUND.stepsPerRound, 12));
  });

  it('spends nothing for zero rounds', () => {
    expect(dpSgdRoundsEpsilon(ROUND, 0, 1e-5)).toBe(0);
  });

  it.each([
    ['clipNorm', { clipNorm: 0 }],
    ['noiseMultiplier', { noiseMultiplier: Number.NaN }],
    ['samplingRate', { samplingRate: 0 }],
    ['samplingRate', { samplingRate: 1.5 }],
    ['stepsPerRound', { stepsPerRound: 2.5 }],
    ['dimension', { dimension: 0 }],
  ])('refuses a bad %s, naming it', (name, change) => {
    expect(() => dpSgdRoundRdp({ ...ROUND, ...change })).toThrow(name);
  });

  it('refuses a negative or fractional round count', () => {
    expect(() => dpSgdRoundsEpsilon(ROUND, -1, 1e-5)).toThrow('rounds');
    expect(() => dpSgdRoundsEpsilon(ROUND, 1.5, 1e-5)).toThrow('rounds');
  });
});
