/**
 * Participant-level distributed DP in a round (Kairouz, Liu, Steinke 2021; crypto/dp/distributed-dp.ts
 * holds the mechanism). A task names the public parameters (DistributedDpRequirement); the coordinator
 * derives the round's values from them and states all of it in RoundConfig.distributedDp, which every
 * site signs with H(RoundConfig); each site recomputes the same values from its own task and refuses any
 * difference (checkRoundDistributedDp), so a lying coordinator cannot shrink the noise, move the ring,
 * choose the rotation, or give some sites another mechanism than others.
 *
 * What each round derives:
 * - t (minimum survivors) = RoundConfig.reconstructionThreshold: a round completes only with every
 *   secret reconstructed from t live holders, so |U3| >= t. Each site adds the share
 *   (gamma sigma c)^2 / (t - toleratedColluders) of the target variance (distributed-dp.ts).
 * - The rotation seed = SHA-256("fedgate/v1/dp-rotation" || federation id || round id), length-prefixed:
 *   public, fixed by the round id (whose counter never repeats), so the coordinator cannot pick the
 *   signs after seeing this round's updates. The privacy analysis holds for any signs; the signs matter
 *   only to the wrap bound, which assumes them independent of the data.
 * - The scale gamma: the largest power of two whose wrap bound (distributed-dp.ts wrapProbabilityBound,
 *   with n = |U| contributions, an upper bound on |U3|) is at most DP_WRAP_TARGET. Start from the closed
 *   form gamma0 = (2^(b-1) - n) / sqrt(2 ln(2D / target) ((n c)^2 / D + n (sigma c)^2 / (t - colluders))),
 *   round down to a power of two, and halve while the exact bound (which counts the rounding up of the
 *   per-site variance) is above the target. A power of two keeps gamma exact in every encoding. Also at
 *   most the power of two that keeps each site's noise variance below 2^50 ring units^2, so that the
 *   sampler's and the sum's integer arithmetic stay exact in doubles (a wide ring and few sites would
 *   otherwise ask for more).
 */
import { bytesEqual, encodeFields, toHex, utf8 } from '../bytes.js';
import { compileDistributedDp, distributedDpRdp, wrapProbabilityBound, type CompiledDistributedDp } from '../dp/distributed-dp.js';
import { paddedDimension } from '../dp/hadamard.js';
import { DEFAULT_ORDERS, type RdpCurve } from '../dp/rdp.js';
import { sha256 } from '../hash.js';
import { parameterCount, type RoundConfig } from './config.js';
import type { DistributedDpRequirement, RoundDistributedDp } from './dp-fields.js';
import { secaggInvalid, secaggPrecondition } from './errors.js';

/** The wrap probability a round's scale is chosen for (a wrap spoils that round's aggregate, not privacy). */
export const DP_WRAP_TARGET = 2 ** -30;
/** Largest per-site noise variance (ring units^2) a derived scale asks for. */
const MAX_SITE_VARIANCE = 2 ** 50;

/** The round's public values the derivations read. */
export interface DistributedDpRoundShape {
  readonly federationId: string;
  readonly roundId: Uint8Array;
  /** |U|. */
  readonly participants: number;
  /** t. */
  readonly threshold: number;
  /** d, the model's parameter count. */
  readonly dimension: number;
}

/** SHA-256 of the length-prefixed ("fedgate/v1/dp-rotation", federation id, round id). */
export function dpRotationSeed(federationId: string, roundId: Uint8Array): Uint8Array {
  return sha256(encodeFields([utf8('fedgate/v1/dp-rotation'), utf8(federationId), roundId]));
}

function compileWith(requirement: DistributedDpRequirement, shape: DistributedDpRoundShape, scale: number, rotationSeed: Uint8Array): CompiledDistributedDp {
  return compileDistributedDp({
    clipNorm: requirement.clipNorm,
    dimension: shape.dimension,
    scale,
    ringBits: requirement.ringBits,
    targetNoiseStd: requirement.noiseMultiplier * requirement.clipNorm,
    minSurvivors: shape.threshold,
    toleratedColluders: requirement.toleratedColluders,
    rotationSeed,
  });
}

/** gamma for this round (see the header); INVALID_ARGUMENT 'DP_RING_TOO_SMALL' when no scale meets the target. */
export function dpScale(requirement: DistributedDpRequirement, shape: DistributedDpRoundShape): number {
  const n = shape.participants;
  const size = paddedDimension(shape.dimension);
  const honest = shape.threshold - requirement.toleratedColluders;
  const c = requirement.clipNorm;
  const sigma = requirement.noiseMultiplier * c;
  const margin = 2 ** (requirement.ringBits - 1) - n;
  const tooSmall = (): never => {
    throw secaggInvalid(
      'DP_RING_TOO_SMALL',
      `a ring of ${requirement.ringBits} bits cannot hold the sum of ${n} contributions (d = ${shape.dimension}, c = ${c}, noise ${sigma}) with wrap probability <= 2^-30: raise privacy.participantLevel.ringBits`,
      { stage: 'round_config' },
    );
  };
  if (!(honest >= 1)) throw secaggInvalid('INVALID_ROUND_CONFIG', `toleratedColluders ${requirement.toleratedColluders} must be below t = ${shape.threshold}`, { stage: 'round_config' });
  if (margin <= 0) tooSmall();
  const perUnit = (n * c) ** 2 / size + (n * sigma * sigma) / honest;
  const gamma0 = margin / Math.sqrt(2 * Math.log((2 * size) / DP_WRAP_TARGET) * perUnit);
  const exactLimit = Math.sqrt(MAX_SITE_VARIANCE * honest) / sigma;
  let scale = 2 ** Math.floor(Math.log2(Math.min(gamma0, exactLimit)));
  const seed = new Uint8Array(32);
  for (let i = 0; i < 64 && wrapProbabilityBound(compileWith(requirement, shape, scale, seed), n) > DP_WRAP_TARGET; i++) scale /= 2;
  if (!(scale > 2 ** -64) || wrapProbabilityBound(compileWith(requirement, shape, scale, seed), n) > DP_WRAP_TARGET) tooSmall();
  return scale;
}

/** RoundConfig.distributedDp for a round of `shape` under `requirement` (the coordinator's side). */
export function roundDistributedDp(requirement: DistributedDpRequirement, shape: DistributedDpRoundShape): RoundDistributedDp {
  return {
    mechanism: requirement.mechanism,
    clipNorm: requirement.clipNorm,
    noiseMultiplier: requirement.noiseMultiplier,
    toleratedColluders: requirement.toleratedColluders,
    ringBits: requirement.ringBits,
    scale: dpScale(requirement, shape),
    rotationSeed: dpRotationSeed(shape.federationId, shape.roundId),
  };
}

function shapeOf(config: RoundConfig): DistributedDpRoundShape {
  return { federationId: config.federationId, roundId: config.roundId, participants: config.participants.length, threshold: config.reconstructionThreshold, dimension: parameterCount(config) };
}

/** The mechanism of a round with distributed DP, compiled from its RoundConfig. */
export function compileRoundDp(config: RoundConfig): CompiledDistributedDp {
  const dp = config.distributedDp;
  if (dp === undefined) throw secaggInvalid('INVALID_ARGUMENT', 'this round has no distributed DP (RoundConfig.distributedDp is absent)');
  return compileWith(dp, shapeOf(config), dp.scale, dp.rotationSeed);
}

/**
 * The site's check (after its policy): RoundConfig.distributedDp must be exactly what its task asks
 * (`requirement`, undefined when the task asks for none) and what this round derives from it. Throws
 * SecAggError FAILED_PRECONDITION with reason 'DP_REQUIRED' (the task asks for DP, the config has none),
 * 'DP_NOT_IN_TASK' (the reverse: sites of one round must encode alike), 'DP_PARAMETERS_MISMATCH'
 * (mechanism, clip norm, noise multiplier, tolerated colluders or ring bits differ), 'DP_ROTATION_SEED_MISMATCH'
 * or 'DP_SCALE_MISMATCH'. Messages name the field and the round's public values only.
 */
export function checkRoundDistributedDp(config: RoundConfig, requirement: DistributedDpRequirement | undefined, site?: string): void {
  const context = { stage: 'round_config', ...(site === undefined ? {} : { site }) };
  const dp = config.distributedDp;
  if (config.purpose === 'evaluate') {
    // An evaluation-only round uploads no update: nothing to noise (its metrics are the task's own matter).
    if (dp !== undefined) throw secaggPrecondition('DP_NOT_IN_TASK', 'RoundConfig.distributedDp is set in an evaluation-only round', context);
    return;
  }
  if (requirement === undefined) {
    if (dp !== undefined) throw secaggPrecondition('DP_NOT_IN_TASK', "RoundConfig.distributedDp is set but this round's task asks for no participant-level DP", context);
    return;
  }
  if (dp === undefined) throw secaggPrecondition('DP_REQUIRED', "this round's task asks for participant-level DP (privacy.participantLevel) but RoundConfig.distributedDp is absent", context);
  for (const key of ['mechanism', 'clipNorm', 'noiseMultiplier', 'toleratedColluders', 'ringBits'] as const) {
    if (dp[key] !== requirement[key]) {
      throw secaggPrecondition('DP_PARAMETERS_MISMATCH', `RoundConfig.distributedDp.${key} is ${String(dp[key])} but the task's privacy.participantLevel.${key} is ${String(requirement[key])}`, context);
    }
  }
  const expectedSeed = dpRotationSeed(config.federationId, config.roundId);
  if (!bytesEqual(dp.rotationSeed, expectedSeed)) {
    throw secaggPrecondition('DP_ROTATION_SEED_MISMATCH', `RoundConfig.distributedDp.rotationSeed ${toHex(dp.rotationSeed)} is not the one derived from the round id (${toHex(expectedSeed)})`, context);
  }
  const expectedScale = dpScale(requirement, shapeOf(config));
  if (dp.scale !== expectedScale) {
    throw secaggPrecondition('DP_SCALE_MISMATCH', `RoundConfig.distributedDp.scale is ${dp.scale} but this round (|U| = ${config.participants.length}, t = ${config.reconstructionThreshold}, d = ${parameterCount(config)}) derives ${expectedScale}`, context);
  }
}

/**
 * The RDP curve one round spends at the participant level (distributedDpRdp: the privacy theorem of the
 * distributed discrete Gaussian). By default the guarantee every completed round has: t survivors, less
 * the tolerated colluders. With `survivors` (|U3|, known after MaskedInput) the round's actual noise:
 * every survivor's share counts, less the tolerated colluders. Compose across rounds by adding curves
 * (crypto/dp composeCurves).
 */
export function participantLevelRoundCurve(config: RoundConfig, survivors?: number, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  const compiled = compileRoundDp(config);
  if (survivors === undefined) return distributedDpRdp(compiled, orders);
  if (!Number.isSafeInteger(survivors) || survivors < config.reconstructionThreshold || survivors > config.participants.length) {
    throw secaggInvalid('INVALID_ARGUMENT', `survivors must be an integer in [t, |U|] = [${config.reconstructionThreshold}, ${config.participants.length}], got ${String(survivors)}`);
  }
  return distributedDpRdp({ ...compiled, honestShares: survivors - compiled.toleratedColluders }, orders);
}

/** What a round's log and result report about its distributed DP. */
export interface DistributedDpReport {
  readonly mechanism: string;
  readonly ringBits: number;
  /** Bits each coordinate of an upload carries (b; the words travel as uint32). */
  readonly bitsPerCoordinate: number;
  /** D: rotated length (d padded to a power of two). */
  readonly paddedDimension: number;
  readonly scale: number;
  /** Upper bound on the probability that any coordinate of the sum of the round's |U| contributions wraps. */
  readonly wrapProbabilityBound: number;
  /** Standard deviation of the noise the sum carries at least, per coordinate, in model units. */
  readonly noiseStd: number;
  readonly clipNorm: number;
  readonly toleratedColluders: number;
}

export function distributedDpReport(config: RoundConfig): DistributedDpReport {
  const compiled = compileRoundDp(config);
  return {
    mechanism: (config.distributedDp as RoundDistributedDp).mechanism,
    ringBits: compiled.ringBits,
    bitsPerCoordinate: compiled.ringBits,
    paddedDimension: compiled.paddedDimension,
    scale: compiled.scale,
    wrapProbabilityBound: wrapProbabilityBound(compiled, config.participants.length),
    noiseStd: compiled.targetNoiseStd,
    clipNorm: compiled.clipNorm,
    toleratedColluders: compiled.toleratedColluders,
  };
}
