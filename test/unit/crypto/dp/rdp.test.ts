import { describe, expect, it } from 'vitest';
import { logErfc } from '../../../../crypto/dp/log-math.js';
import { composeCurves, composeSteps, curveOnOrders, DEFAULT_ORDERS, dpSgdEpsilon, gaussianRdp, INTEGER_ORDERS, rdpToEpsilon, subsampledGaussianRdp } from '../../../../crypto/dp/rdp.js';
import { maxSteps, sigmaForEpsilon } from '../../../../crypto/dp/rdp-inverse.js';

const ABADI = { q: 0.01, sigma: 4, steps: 10_000, delta: 1e-5 };

describe('RDP accountant: the subsampled Gaussian (Mironov, Talwar, Zhang 2019)', () => {
  it('reproduces Abadi et al. 2016 with the classic conversion: epsilon ~= 1.26 (within 3%)', () => {
    const epsilon = dpSgdEpsilon({ ...ABADI, conversion: 'classic' });
    expect(Math.abs(epsilon - 1.26) / 1.26).toBeLessThan(0.03);
  });

  it('gives ~1.04 for the Abadi case with the conversion of Balle et al. 2020 (within 3%)', () => {
    const epsilon = dpSgdEpsilon({ ...ABADI, conversion: 'balle2020' });
    expect(Math.abs(epsilon - 1.04) / 1.04).toBeLessThan(0.03);
  });

  it('matches the closed-form binomial sum at order 2: A_2 = 1 + q^2 (e^{1/sigma^2} - 1)', () => {
    for (const [q, sigma] of [[0.01, 4], [0.3, 0.9], [0.001, 0.6]] as const) {
      const rdp = subsampledGaussianRdp(q, sigma, [2]).rdp[0]!;
      expect(rdp).toBeCloseTo(Math.log(1 + q * q * Math.expm1(1 / (sigma * sigma))), 12);
    }
  });

  it('joins the integer and fractional formulas continuously (a wrong series term or sign breaks this)', () => {
    for (const [q, sigma] of [[0.01, 4], [0.05, 1], [0.2, 1.5]] as const) {
      for (const alpha of [2, 5, 12, 40]) {
        const [below, at, above] = subsampledGaussianRdp(q, sigma, [alpha - 1e-6, alpha, alpha + 1e-6]).rdp;
        expect(Math.abs(below! - at!) / at!).toBeLessThan(1e-4);
        expect(Math.abs(above! - at!) / at!).toBeLessThan(1e-4);
      }
    }
  });

  it('is the plain Gaussian at q = 1 and zero at q = 0, and grows with q and alpha', () => {
    expect(subsampledGaussianRdp(1, 2, [3, 7.5]).rdp).toEqual(gaussianRdp(2, 1, [3, 7.5]).rdp);
    expect(subsampledGaussianRdp(0, 2, [3, 7.5]).rdp).toEqual([0, 0]);
    const low = subsampledGaussianRdp(0.01, 1).rdp;
    const high = subsampledGaussianRdp(0.02, 1).rdp;
    for (let i = 0; i < low.length; i++) {
      expect(high[i]!).toBeGreaterThan(low[i]!);
      if (i > 0) expect(low[i]!).toBeGreaterThanOrEqual(low[i - 1]! * (1 - 1e-9));
    }
  });

  it('is never above the unsampled Gaussian (amplification by subsampling)', () => {
    const sampled = subsampledGaussianRdp(0.1, 1.2).rdp;
    const plain = gaussianRdp(1.2).rdp;
    sampled.forEach((value, i) => expect(value).toBeLessThanOrEqual(plain[i]! + 1e-12));
  });
});

describe('RDP accountant: composition and conversion', () => {
  it('adds curves of heterogeneous mechanisms on one grid and refuses curves on another', () => {
    const a = composeSteps(subsampledGaussianRdp(0.01, 1.1), 500);
    const b = gaussianRdp(30);
    const total = composeCurves([a, b]);
    total.rdp.forEach((value, i) => expect(value).toBeCloseTo(a.rdp[i]! + b.rdp[i]!, 12));
    expect(() => composeCurves([a, gaussianRdp(30, 1, INTEGER_ORDERS)])).toThrow(/different grid/);
    expect(rdpToEpsilon(total, 1e-5).epsilon).toBeGreaterThan(rdpToEpsilon(a, 1e-5).epsilon);
  });

  it('zero steps of a curve unbounded at some orders spend nothing (no NaN)', () => {
    expect(composeSteps({ orders: [2, 2.5], rdp: [0.1, Infinity] }, 0).rdp).toEqual([0, 0]);
    expect(rdpToEpsilon(composeSteps({ orders: [2, 2.5], rdp: [0.1, Infinity] }, 3), 1e-5).order).toBe(2);
  });

  it('Balle et al. 2020 is tighter than the classic conversion on the same curve', () => {
    const curve = composeSteps(subsampledGaussianRdp(0.02, 1), 2000);
    expect(rdpToEpsilon(curve, 1e-5, 'balle2020').epsilon).toBeLessThan(rdpToEpsilon(curve, 1e-5, 'classic').epsilon);
  });

  it('converts the Gaussian mechanism to the known closed-form bound', () => {
    // classic: min_a a/(2 s^2) + log(1/delta)/(a-1) ~= 1/(2 s^2) + sqrt(2 log(1/delta)) / s for a continuous order
    const s = 10;
    const epsilon = rdpToEpsilon(gaussianRdp(s, 1, DEFAULT_ORDERS), 1e-5).epsilon;
    const continuous = 1 / (2 * s * s) + Math.sqrt(2 * Math.log(1e5)) / s;
    expect(epsilon).toBeGreaterThanOrEqual(continuous - 1e-12);
    expect(epsilon).toBeLessThan(continuous * 1.01);
  });

  it('refuses a delta outside (0, 1) and a negative RDP value', () => {
    expect(() => rdpToEpsilon(gaussianRdp(1), 0)).toThrow(/delta/);
    expect(() => rdpToEpsilon({ orders: [2], rdp: [-1] }, 1e-5)).toThrow(/rdp\[0\]/);
  });
});

describe('curveOnOrders', () => {
  it('reads a curve on another grid conservatively: orders it does not bound are +Infinity, orders off the grid are dropped, and its epsilon is unchanged when the grid covers its orders', () => {
    const integer = subsampledGaussianRdp(0.01, 1.1, INTEGER_ORDERS);
    const onDefault = curveOnOrders(integer, DEFAULT_ORDERS);
    expect(onDefault.orders).toEqual(DEFAULT_ORDERS);
    expect(onDefault.rdp[DEFAULT_ORDERS.indexOf(2.5)]).toBe(Infinity);
    expect(onDefault.rdp[DEFAULT_ORDERS.indexOf(12)]).toBe(integer.rdp[INTEGER_ORDERS.indexOf(12)]);
    expect(rdpToEpsilon(onDefault, 1e-5).epsilon).toBe(rdpToEpsilon(integer, 1e-5).epsilon);
    const coarse = curveOnOrders(gaussianRdp(2), [2, 32]);
    expect(coarse).toEqual({ orders: [2, 32], rdp: [2 / 8, 32 / 8] });
    expect(rdpToEpsilon(coarse, 1e-5).epsilon).toBeGreaterThanOrEqual(rdpToEpsilon(gaussianRdp(2), 1e-5).epsilon);
  });
});

describe('RDP accountant: the inverse questions', () => {
  it('maxSteps is the largest step count within the budget', () => {
    const step = subsampledGaussianRdp(0.01, 1.1);
    const budget = { epsilon: 3, delta: 1e-5 };
    const n = maxSteps(step, budget);
    expect(rdpToEpsilon(composeSteps(step, n), 1e-5).epsilon).toBeLessThanOrEqual(3);
    expect(rdpToEpsilon(composeSteps(step, n + 1), 1e-5).epsilon).toBeGreaterThan(3);
    expect(maxSteps(step, { epsilon: 1e-6, delta: 1e-5 })).toBe(0);
  });

  it('maxSteps counts what was already spent', () => {
    const step = subsampledGaussianRdp(0.01, 1.1);
    const spent = composeSteps(step, 1000);
    const budget = { epsilon: 3, delta: 1e-5 };
    expect(maxSteps(step, budget, { spent })).toBe(maxSteps(step, budget) - 1000);
  });

  it('sigmaForEpsilon meets the target and is tight to 1e-3', () => {
    const sigma = sigmaForEpsilon(0.01, 10_000, { epsilon: 1.26, delta: 1e-5 });
    expect(dpSgdEpsilon({ q: 0.01, sigma, steps: 10_000, delta: 1e-5 })).toBeLessThanOrEqual(1.26);
    expect(dpSgdEpsilon({ q: 0.01, sigma: sigma * 0.999, steps: 10_000, delta: 1e-5 })).toBeGreaterThan(1.26);
    expect(Math.abs(sigma - 4) / 4).toBeLessThan(0.02);
  });
});

describe('logErfc', () => {
  it('matches reference values of log(erfc(x)) across the real line', () => {
    // log(erfc(x)) from SciPy (special.erfc, and log_ndtr far out)
    const table: [number, number][] = [
      [-5, 0.6931471805591766],
      [-1, 0.6112323176780704],
      [0, 0],
      [0.5, -0.7350111298370844],
      [3.1, -11.360319632044742],
      [10, -102.87988902484489],
      [30, -903.9741171106442],
    ];
    for (const [x, expected] of table) expect(Math.abs(logErfc(x) - expected)).toBeLessThan(1e-11 * Math.max(1, Math.abs(expected)));
  });
});
