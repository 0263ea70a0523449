/**
 * DP-SGD's float noise without floating-point sampling: the noisy gradient sum is released on the grid
 * 2^-k Z^d, as snap(S) + 2^-k Z with Z ~ N_Z(0, s^2)^d exactly (crypto/dp/discrete-gaussian.ts) and
 * s^2 >= (noiseStd * 2^k)^2 rounded UP to an integer (more noise, never less).
 *
 * Why this is safe where x + float_gaussian() is not (Mironov 2012): a float sampler's output set depends
 * on x through the irregular spacing of doubles, so the low bits of the result betray x. Here every step
 * is exact: snap(S) = round(S * 2^k) * 2^-k, the integer noise is drawn with rational arithmetic, and
 * their sum is a multiple of 2^-k below 2^(53-k) in magnitude (checked), which a double holds exactly.
 * Any later rounding (to float32 for the optimiser) is post-processing of that exact value and costs no
 * privacy.
 *
 * What it costs in accounting: snapping moves each coordinate by at most 2^-(k+1), so two neighbouring
 * sums differ after snapping by at most C + sqrt(d) 2^-k in L2 (`snappedSensitivity`); the accountant must
 * use noise multiplier noiseStd / that, not noiseStd / C. With k = 24 and d = 10^6 that is C + 6e-5.
 *
 * Which RDP orders: the shift between the two outputs is a lattice vector Delta, and N_Z is
 * sub-Gaussian with E[exp(lambda X)] <= exp(lambda^2 s^2 / 2) (CKS20, Cor. 9). For integer alpha the
 * binomial expansion of MTZ19 (section 3.3) has positive coefficients and its k-th term is
 * E[(mu1/mu0)^k] = exp(-k|Delta|^2/(2s^2)) E[exp(k <X, Delta>/s^2)] <= exp((k^2 - k)|Delta|^2 / (2 s^2)),
 * the continuous term; so the continuous subsampled-Gaussian RDP bounds the lattice mechanism at INTEGER
 * orders. Account it with INTEGER_ORDERS (crypto/dp/rdp.ts). The fractional-order series has no such
 * term-by-term argument. This covers the add-one direction D(mu || mu0); MTZ19 (Thm. 5) show the other
 * direction is dominated for the continuous Gaussian - that step is not re-derived here for the lattice.
 */
import { invalidArgument } from '../errors.js';
import { DiscreteGaussianSampler } from './discrete-gaussian.js';
import { RandomWords } from './random-words.js';
import { INTEGER_ORDERS, subsampledGaussianRdp, type RdpCurve } from './rdp.js';

export interface SnappedGaussianOptions {
  /** Standard deviation of the noise in the values' units (DP-SGD: sigma * C). */
  readonly noiseStd: number;
  /** The grid is 2^-gridExponent; default 24. */
  readonly gridExponent?: number;
  readonly random?: RandomWords;
}

export const DEFAULT_GRID_EXPONENT = 24;

/** The L2 sensitivity after snapping a sum of L2 sensitivity `clipNorm` in `dimension` coordinates. */
export function snappedSensitivity(clipNorm: number, dimension: number, gridExponent = DEFAULT_GRID_EXPONENT): number {
  return clipNorm + Math.sqrt(dimension) * 2 ** -gridExponent;
}

/** The integer variance (noiseStd * 2^k)^2 rounded up; the noise actually added. */
export function snappedVariance(noiseStd: number, gridExponent = DEFAULT_GRID_EXPONENT): bigint {
  if (typeof noiseStd !== 'number' || !Number.isFinite(noiseStd) || noiseStd <= 0) throw invalidArgument('INVALID_DP_PARAMETER', `noiseStd must be a finite number > 0, got ${String(noiseStd)}`);
  if (!Number.isInteger(gridExponent) || gridExponent < 0 || gridExponent > 40) throw invalidArgument('INVALID_DP_PARAMETER', `gridExponent must be an integer in [0, 40], got ${String(gridExponent)}`);
  const scaled = noiseStd * 2 ** gridExponent; // exact: a power-of-two scaling
  // scaled^2 may round down in float; ceil(scaled)^2 >= scaled^2 is an integer, squared exactly in BigInt.
  const whole = BigInt(Math.ceil(scaled));
  return whole * whole;
}

/**
 * Replaces `values` (a clipped gradient sum) by snap(values) + snapped discrete Gaussian noise, in place.
 * A Float64Array holds the exact lattice value; a Float32Array receives it rounded (post-processing).
 */
export function addSnappedGaussianNoise(values: Float32Array | Float64Array, options: SnappedGaussianOptions): void {
  const k = options.gridExponent ?? DEFAULT_GRID_EXPONENT;
  const variance = snappedVariance(options.noiseStd, k);
  const sampler = new DiscreteGaussianSampler({ numerator: variance, denominator: 1n }, options.random ?? new RandomWords());
  const up = 2 ** k;
  const down = 2 ** -k;
  const limit = 2 ** 53;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (!Number.isFinite(x)) throw invalidArgument('VALUE_NOT_FINITE', `values[${i}] is ${x}, expected a finite number`);
    const lattice = Math.round(x * up) + sampler.next(); // integers below 2^53: exact
    if (Math.abs(lattice) >= limit) throw invalidArgument('VALUE_OUT_OF_RANGE', `values[${i}] = ${x} is too large for the grid 2^-${k}: lower gridExponent`);
    values[i] = lattice * down;
  }
}

/**
 * The RDP curve of ONE DP-SGD step with snapped noise: the Poisson-subsampled Gaussian at rate q with the
 * noise multiplier sigma * C / snappedSensitivity(C, d, k), on integer orders only (see the header).
 * Compose over steps with composeSteps.
 */
export function snappedDpSgdStepRdp(params: { q: number; sigma: number; clipNorm: number; dimension: number; gridExponent?: number }): RdpCurve {
  const k = params.gridExponent ?? DEFAULT_GRID_EXPONENT;
  const sensitivity = snappedSensitivity(params.clipNorm, params.dimension, k);
  // The noise actually added is sqrt(snappedVariance) 2^-k >= sigma C; account the smaller, requested one.
  return subsampledGaussianRdp(params.q, (params.sigma * params.clipNorm) / sensitivity, INTEGER_ORDERS);
}
