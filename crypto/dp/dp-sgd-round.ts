/**
 * What one round of a task's record-level DP-SGD spends on a site's training records, computed from the
 * task's public parameters alone (clip norm C, noise multiplier sigma, Poisson sampling rate q, steps per
 * round, and the model's parameter count d): a site charges this curve to its privacy budget before it
 * trains, and the coordinator reports the same figure for the rounds it committed. Nothing here comes
 * from the trainer, so a site's accounting cannot be moved by what training did.
 *
 * Which curve: the snapped Gaussian's (crypto/dp/snapped-gaussian.ts snappedDpSgdStepRdp), because that
 * is the sampler DP-SGD's noise must use (exact lattice noise, safe against floating-point attacks) and
 * because it dominates the continuous one: its effective noise multiplier sigma C / (C + sqrt(d) 2^-k) is
 * smaller than sigma and it is bounded on integer orders only, so its epsilon is never below the
 * continuous subsampled Gaussian's at the same (q, sigma, steps, delta). Were a trainer to add continuous
 * or discrete Gaussian noise of standard deviation sigma C instead, this charge would over-count by a
 * hair (about sqrt(d) 2^-24 / C relative to sigma, plus the fractional orders it gives up), never
 * under-count.
 */
import { invalidArgument } from '../errors.js';
import { composeSteps, rdpToEpsilon, type Conversion, type RdpCurve } from './rdp.js';
import { DEFAULT_GRID_EXPONENT, snappedDpSgdStepRdp } from './snapped-gaussian.js';

/** The public parameters of one round of record-level DP-SGD (the task's privacy.recordLevel plus d). */
export interface DpSgdRoundParams {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly stepsPerRound: number;
  /** Number of trained parameters d (the snapped noise's grid adds sqrt(d) 2^-k to the sensitivity). */
  readonly dimension: number;
  /** @default DEFAULT_GRID_EXPONENT (24) */
  readonly gridExponent?: number;
}

/**
 * The RDP curve (crypto/dp INTEGER_ORDERS) of one round: stepsPerRound Poisson-subsampled snapped
 * Gaussian steps composed (Mironov, Talwar, Zhang 2019 per step; RDP adds over steps).
 */
export function dpSgdRoundRdp(params: DpSgdRoundParams): RdpCurve {
  checkRoundParams(params);
  const step = snappedDpSgdStepRdp({
    q: params.samplingRate,
    sigma: params.noiseMultiplier,
    clipNorm: params.clipNorm,
    dimension: params.dimension,
    gridExponent: params.gridExponent ?? DEFAULT_GRID_EXPONENT,
  });
  return composeSteps(step, params.stepsPerRound);
}

/** Epsilon at `delta` of `rounds` rounds of `params` on the same records (0 for no round). */
export function dpSgdRoundsEpsilon(params: DpSgdRoundParams, rounds: number, delta: number, conversion: Conversion = 'classic'): number {
  if (!Number.isSafeInteger(rounds) || rounds < 0) throw invalidArgument('INVALID_DP_PARAMETER', `rounds must be a non-negative integer, got ${String(rounds)}`);
  const round = dpSgdRoundRdp(params);
  // Nothing released yet is epsilon 0 (the conversion alone would print log(1/delta)/(a_max - 1) > 0).
  if (rounds === 0) return 0;
  return rdpToEpsilon(composeSteps(round, rounds), delta, conversion).epsilon;
}

function checkRoundParams(params: DpSgdRoundParams): void {
  const positive = (value: number, name: string): void => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArgument('INVALID_DP_PARAMETER', `${name} must be a finite number > 0, got ${String(value)}`);
  };
  positive(params.clipNorm, 'clipNorm');
  positive(params.noiseMultiplier, 'noiseMultiplier');
  if (typeof params.samplingRate !== 'number' || !(params.samplingRate > 0 && params.samplingRate <= 1)) {
    throw invalidArgument('INVALID_DP_PARAMETER', `samplingRate must be in (0, 1], got ${String(params.samplingRate)}`);
  }
  if (!Number.isSafeInteger(params.stepsPerRound) || params.stepsPerRound < 1) throw invalidArgument('INVALID_DP_PARAMETER', `stepsPerRound must be a positive integer, got ${String(params.stepsPerRound)}`);
  if (!Number.isSafeInteger(params.dimension) || params.dimension < 1) throw invalidArgument('INVALID_DP_PARAMETER', `dimension (the number of trained parameters) must be a positive integer, got ${String(params.dimension)}`);
}
