/**
 * Renyi differential privacy (RDP) of the mechanisms fedgate uses, as curves over a fixed grid of orders
 * alpha: RDP of a composition is the sum of the curves (Mironov 2017, Prop. 1), and a curve converts to
 * (epsilon, delta) by minimising over the orders.
 *
 * The Poisson-subsampled Gaussian (DP-SGD's step: each record in the batch independently with probability
 * q, per-record L2 sensitivity 1 after clipping, noise N(0, sigma^2) per coordinate) follows Mironov, Talwar,
 * Zhang 2019 ("Renyi Differential Privacy of the Sampled Gaussian Mechanism", section 3.3): integer orders
 * exactly through the binomial expansion
 *   A_alpha = sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)),
 * fractional orders through the two-sided erfc series the same section gives for non-integer alpha, and
 * RDP(alpha) = log(A_alpha) / (alpha - 1). Both are summed in log space, so large alpha / small sigma never
 * overflow.
 */
import { invalidArgument } from '../errors.js';
import { logAdd, logErfc, logSub } from './log-math.js';

/** An RDP curve: rdp[i] is the Renyi divergence bound at orders[i]. Curves compose only on the same orders. */
export interface RdpCurve {
  readonly orders: readonly number[];
  readonly rdp: readonly number[];
}

/**
 * The default grid: 1.1 to 10.9 in steps of 0.1 (fractional orders matter for large epsilon), every
 * integer from 11 to 64, then 80, 96, 128 and 256 (small epsilon, large step counts). The integer subset
 * INTEGER_ORDERS serves mechanisms only bounded at integer orders (the discrete Gaussian of DP-SGD's
 * float noise, crypto/dp/snapped-gaussian.ts).
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => Number((1.1 + i / 10).toFixed(1))),
  ...Array.from({ length: 54 }, (_, i) => 11 + i),
  80,
  96,
  128,
  256,
]);

/** 2 to 64, then 80, 96, 128, 256. */
export const INTEGER_ORDERS: readonly number[] = Object.freeze([...Array.from({ length: 63 }, (_, i) => 2 + i), 80, 96, 128, 256]);

/** Accepted orders: finite, > 1 (RDP of order 1 is KL divergence and converts to no finite epsilon here). */
export function checkOrders(orders: readonly number[], name = 'orders'): void {
  if (!Array.isArray(orders) || orders.length === 0) throw invalidArgument('INVALID_ORDERS', `${name} must be a non-empty array of RDP orders > 1`);
  for (const [i, alpha] of orders.entries()) {
    if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 1 || alpha > 1e4) {
      throw invalidArgument('INVALID_ORDERS', `${name}[${i}] must be a finite RDP order in (1, 10000], got ${String(alpha)}`);
    }
  }
}

function checkPositive(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidArgument('INVALID_DP_PARAMETER', `${name} must be a finite number > 0, got ${String(value)}`);
  }
}

/** q in [0, 1]. */
function checkRate(q: number): void {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw invalidArgument('INVALID_DP_PARAMETER', `the sampling rate q must be in [0, 1], got ${String(q)}`);
}

/**
 * RDP of one step of the Gaussian mechanism with L2 sensitivity `sensitivity` and noise standard
 * deviation `noiseStd`: alpha * Delta^2 / (2 s^2) (Mironov 2017, Prop. 7). Also the curve of the noise
 * sum of participant-level DP when every share of noise is Gaussian.
 */
export function gaussianRdp(noiseStd: number, sensitivity = 1, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  checkPositive(noiseStd, 'noiseStd');
  checkPositive(sensitivity, 'sensitivity');
  checkOrders(orders);
  const rho = (sensitivity * sensitivity) / (2 * noiseStd * noiseStd);
  return { orders: [...orders], rdp: orders.map((alpha) => alpha * rho) };
}

/**
 * RDP of ONE step of the Poisson-subsampled Gaussian mechanism with sampling rate q and noise multiplier
 * sigma (noise std = sigma * clip norm). Multiply by the number of steps with `composeSteps`.
 */
export function subsampledGaussianRdp(q: number, sigma: number, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  checkRate(q);
  checkPositive(sigma, 'sigma');
  checkOrders(orders);
  return { orders: [...orders], rdp: orders.map((alpha) => subsampledGaussianOrder(q, sigma, alpha)) };
}

function subsampledGaussianOrder(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return Math.max(0, logA / (alpha - 1));
}

/** log A_alpha for integer alpha: the binomial sum, all terms positive. */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinomial = 0; // log C(alpha, k), updated in place
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logBinomial += Math.log((alpha - k + 1) / k);
    logA = logAdd(logA, logBinomial + k * logQ + (alpha - k) * log1mQ + (k * k - k) / (2 * sigma * sigma));
  }
  return logA;
}

/**
 * log A_alpha for fractional alpha (MTZ19, section 3.3): A_alpha = A_0 + A_1 with
 *   A_0 = sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i)/(2 sigma^2)) * erfc((i - z0)/(sqrt2 sigma)) / 2
 *   A_1 = sum_i C(alpha, i) q^(alpha-i) (1-q)^i exp(((alpha-i)^2 - (alpha-i))/(2 sigma^2)) * erfc((z0 - (alpha-i))/(sqrt2 sigma)) / 2
 * where z0 = sigma^2 log(1/q - 1) + 1/2 splits the real line where the two mixture components cross, and
 * C(alpha, i) is the generalised binomial coefficient, whose sign alternates once i > alpha. The sum stops
 * once both terms fall below e^-30 (their tail decays like a Gaussian in i).
 */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logCoefficient = 0; // log |C(alpha, i)|
  let sign = 1;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      if (factor < 0) sign = -sign;
      logCoefficient += Math.log(Math.abs(factor));
    }
    const j = alpha - i;
    const logS0 = logCoefficient + i * logQ + j * log1mQ + (i * i - i) / twoSigma2 + Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logS1 = logCoefficient + j * logQ + i * log1mQ + (j * j - j) / twoSigma2 + Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (i > alpha && Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** The curve of `steps` repetitions of a mechanism: RDP adds under composition. */
export function composeSteps(curve: RdpCurve, steps: number): RdpCurve {
  if (!Number.isSafeInteger(steps) || steps < 0) throw invalidArgument('INVALID_DP_PARAMETER', `steps must be a non-negative integer, got ${String(steps)}`);
  // Zero steps spend nothing, even at orders a curve leaves unbounded (Infinity * 0 would be NaN).
  return { orders: [...curve.orders], rdp: curve.rdp.map((value) => (steps === 0 ? 0 : value * steps)) };
}

/**
 * The curve of running every mechanism of `curves` once on the same data (heterogeneous composition:
 * DP-SGD rounds with different sigma or q, evaluations, distributed-DP releases). All must share one grid.
 */
export function composeCurves(curves: readonly RdpCurve[], orders?: readonly number[]): RdpCurve {
  const grid = orders ?? curves[0]?.orders;
  if (grid === undefined) throw invalidArgument('INVALID_ORDERS', 'composeCurves needs at least one curve, or the orders of the empty composition');
  checkOrders(grid);
  const total = new Array<number>(grid.length).fill(0);
  for (const [index, curve] of curves.entries()) {
    assertSameOrders(grid, curve.orders, `curves[${index}]`);
    for (let i = 0; i < grid.length; i++) total[i]! += curve.rdp[i]!;
  }
  return { orders: [...grid], rdp: total };
}

/**
 * `curve` read on another grid of orders, conservatively: an order of `orders` the curve does not bound
 * is +Infinity there (it then never sets the epsilon), and the curve's orders off `orders` are dropped
 * (a minimum over fewer orders is never smaller). What lets curves computed on different grids (the
 * snapped Gaussian's integer orders, a linear curve on every order) compose on one budget's grid.
 */
export function curveOnOrders(curve: RdpCurve, orders: readonly number[]): RdpCurve {
  checkOrders(orders);
  if (curve.rdp.length !== curve.orders.length) throw invalidArgument('INVALID_ORDERS', `curve.rdp has ${curve.rdp.length} values for ${curve.orders.length} orders`);
  const values = new Map(curve.orders.map((alpha, i) => [alpha, curve.rdp[i]!]));
  return { orders: [...orders], rdp: orders.map((alpha) => values.get(alpha) ?? Infinity) };
}

export function assertSameOrders(expected: readonly number[], actual: readonly number[], name: string): void {
  if (actual.length !== expected.length || actual.some((alpha, i) => alpha !== expected[i])) {
    throw invalidArgument('ORDERS_MISMATCH', `${name} is on a different grid of RDP orders (${actual.length} orders) than expected (${expected.length}): compute every curve on the same orders`);
  }
}

export type Conversion = 'classic' | 'balle2020';

export interface EpsilonResult {
  readonly epsilon: number;
  /** The order at which the minimum was reached. */
  readonly order: number;
}

/**
 * (epsilon, delta) from an RDP curve, minimised over its orders:
 * - 'classic' (Mironov 2017, Prop. 3): eps = RDP(a) + log(1/delta) / (a - 1);
 * - 'balle2020' (Balle, Barthe, Gaboardi, Hsu, Sato 2020, Thm. 21): eps = RDP(a) + log((a - 1)/a) -
 *   (log(delta) + log(a)) / (a - 1), smaller than the classic figure at every order (the two differ by
 *   log((a-1)/a) - log(a)/(a-1) < 0), typically by 15-20% at the optimum.
 */
export function rdpToEpsilon(curve: RdpCurve, delta: number, conversion: Conversion = 'classic'): EpsilonResult {
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw invalidArgument('INVALID_DP_PARAMETER', `delta must be in (0, 1), got ${String(delta)}`);
  checkOrders(curve.orders, 'curve.orders');
  if (curve.rdp.length !== curve.orders.length) throw invalidArgument('INVALID_ORDERS', `curve.rdp has ${curve.rdp.length} values for ${curve.orders.length} orders`);
  let best: EpsilonResult = { epsilon: Infinity, order: curve.orders[0]! };
  for (let i = 0; i < curve.orders.length; i++) {
    const a = curve.orders[i]!;
    const rdp = curve.rdp[i]!;
    if (!(rdp >= 0)) throw invalidArgument('INVALID_ORDERS', `curve.rdp[${i}] must be a number >= 0, got ${String(rdp)}`);
    const epsilon = conversion === 'classic' ? rdp + Math.log(1 / delta) / (a - 1) : rdp + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (epsilon < best.epsilon) best = { epsilon, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/** The Abadi-style one-liner: epsilon of `steps` Poisson-subsampled Gaussian steps. */
export function dpSgdEpsilon(params: { q: number; sigma: number; steps: number; delta: number; conversion?: Conversion; orders?: readonly number[] }): number {
  const curve = composeSteps(subsampledGaussianRdp(params.q, params.sigma, params.orders ?? DEFAULT_ORDERS), params.steps);
  return rdpToEpsilon(curve, params.delta, params.conversion ?? 'classic').epsilon;
}
