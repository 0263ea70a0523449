/**
 * Participant-level distributed DP over secure aggregation (Kairouz, Liu, Steinke 2021, "The Distributed
 * Discrete Gaussian Mechanism for Federated Learning with Secure Aggregation", Algorithm 1). Each site:
 * clips its update to L2 norm c, rotates it (crypto/dp/hadamard.ts), scales by gamma, rounds it to
 * integers by randomized rounding until the rounded norm meets the bound of the conditional rounding, adds
 * discrete Gaussian noise of its share of the target variance, and maps the result into Z_{2^b}. The
 * coordinator sums the masked vectors in SecAgg's ring Z_{2^32} (crypto/secagg/update-vector.ts: uint32
 * words, wrapping addition); since 2^b divides 2^32, reducing that sum mod 2^b gives the sum in Z_{2^b}.
 * Decoding maps it to centred integers, divides by gamma and undoes the rotation.
 *
 * Noise shares: the sum must carry variance (gamma * targetNoiseStd)^2 even when only t sites survive and
 * `toleratedColluders` of them reveal their noise to the coordinator, so each site adds
 * ceil((gamma * targetNoiseStd)^2 / (t - toleratedColluders)) (rounded up: never less noise).
 *
 * These vectors take the place of the delta slots of SecAgg's upload (D words, one per rotated
 * coordinate) in a round whose RoundConfig carries distributedDp: crypto/secagg/distributed-dp-round.ts
 * derives the round's parameters and the site's check, update-vector.ts and aggregate-codec.ts encode and
 * decode with the functions here.
 */
import { invalidArgument } from '../errors.js';
import { DiscreteGaussianSampler } from './discrete-gaussian.js';
import { paddedDimension, rotate, rotationSigns, unrotate } from './hadamard.js';
import { RandomWords } from './random-words.js';
import { DEFAULT_ORDERS, type RdpCurve } from './rdp.js';

export interface DistributedDpParams {
  /** L2 clip norm c of a site's whole update, in model units. */
  readonly clipNorm: number;
  /** d, the update's length. */
  readonly dimension: number;
  /** gamma: ring units per model unit (the rounding grid is 1/gamma). */
  readonly scale: number;
  /** b: the modular ring Z_{2^b}, 1 <= b <= 32 (SecAgg sums in Z_{2^32}). */
  readonly ringBits: number;
  /** Standard deviation, in model units per coordinate, of the noise the sum must carry. */
  readonly targetNoiseStd: number;
  /** t: the fewest survivors a round completes with. */
  readonly minSurvivors: number;
  /** How many survivors may collude with the coordinator (their noise is then known to it). */
  readonly toleratedColluders: number;
  /** beta of the conditional rounding: the chance one rounding attempt fails the norm check; default e^-0.5. */
  readonly roundingBeta?: number;
  /** Public seed of the rotation's signs, shared by all sites and the coordinator for this round. */
  readonly rotationSeed: Uint8Array;
}

export interface CompiledDistributedDp extends DistributedDpParams {
  readonly paddedDimension: number;
  /** Integer variance of each site's discrete Gaussian noise, in ring units squared. */
  readonly perSiteVariance: bigint;
  /** Honest noise shares the sum always holds: t - toleratedColluders. */
  readonly honestShares: number;
  /** The bound on |rounded vector|^2 enforced by the conditional rounding (ring units squared). */
  readonly roundedNormSquaredBound: number;
}

function positive(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArgument('INVALID_DP_PARAMETER', `${name} must be a finite number > 0, got ${String(value)}`);
}

/** Validates the parameters and derives the noise share and the rounding bound. */
export function compileDistributedDp(params: DistributedDpParams): CompiledDistributedDp {
  positive(params.clipNorm, 'clipNorm');
  positive(params.scale, 'scale');
  positive(params.targetNoiseStd, 'targetNoiseStd');
  if (!Number.isInteger(params.ringBits) || params.ringBits < 1 || params.ringBits > 32) throw invalidArgument('INVALID_DP_PARAMETER', `ringBits must be an integer in [1, 32] (SecAgg's ring is Z_{2^32}), got ${String(params.ringBits)}`);
  if (!Number.isSafeInteger(params.minSurvivors) || params.minSurvivors < 1) throw invalidArgument('INVALID_DP_PARAMETER', `minSurvivors must be a positive integer, got ${String(params.minSurvivors)}`);
  if (!Number.isSafeInteger(params.toleratedColluders) || params.toleratedColluders < 0 || params.toleratedColluders >= params.minSurvivors) {
    throw invalidArgument('INVALID_DP_PARAMETER', `toleratedColluders must be an integer in [0, minSurvivors - 1 = ${params.minSurvivors - 1}], got ${String(params.toleratedColluders)}`);
  }
  const beta = params.roundingBeta ?? Math.exp(-0.5);
  if (!(beta > 0 && beta < 1)) throw invalidArgument('INVALID_DP_PARAMETER', `roundingBeta must be in (0, 1), got ${String(beta)}`);
  const size = paddedDimension(params.dimension);
  const honestShares = params.minSurvivors - params.toleratedColluders;
  const totalVariance = (params.scale * params.targetNoiseStd) ** 2;
  const perSite = Math.ceil(totalVariance / honestShares);
  if (!Number.isSafeInteger(perSite)) throw invalidArgument('INVALID_DP_PARAMETER', `the per-site noise variance ${perSite} (ring units^2) is out of range: lower scale or targetNoiseStd`);
  // KLS21, Thm. on conditional randomized rounding: with probability >= 1 - beta one attempt meets
  // |x~|^2 <= c^2 g^2 + D/4 + sqrt(2 log(1/beta)) (c g + sqrt(D)/2); never more than (c g + sqrt(D))^2 (each
  // coordinate moves by < 1). The check below enforces the bound, so it holds whatever the attempt count.
  const cg = params.clipNorm * params.scale;
  const conditional = cg * cg + size / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (cg + Math.sqrt(size) / 2);
  const trivial = (cg + Math.sqrt(size)) ** 2;
  return { ...params, roundingBeta: beta, paddedDimension: size, perSiteVariance: BigInt(Math.max(1, perSite)), honestShares, roundedNormSquaredBound: Math.min(conditional, trivial) };
}

/** The L2 sensitivity of the sum to one site's contribution, in ring units. */
export function distributedSensitivity(compiled: CompiledDistributedDp): number {
  return Math.sqrt(compiled.roundedNormSquaredBound);
}

/** Clips, rotates, scales, rounds (checked) and returns the site's integer vector, before noise. */
export function roundedRotatedUpdate(compiled: CompiledDistributedDp, update: ArrayLike<number>, random: RandomWords): Float64Array {
  if (update.length !== compiled.dimension) throw invalidArgument('INVALID_UPDATE', `the update must have d = ${compiled.dimension} values, got ${update.length}`);
  let squared = 0;
  for (let i = 0; i < update.length; i++) {
    const x = update[i]!;
    if (!Number.isFinite(x)) throw invalidArgument('VALUE_NOT_FINITE', `update[${i}] is ${x}, expected a finite number`);
    squared += x * x;
  }
  const norm = Math.sqrt(squared);
  const factor = compiled.scale * (norm > compiled.clipNorm ? compiled.clipNorm / norm : 1);
  const rotated = rotate(update, rotationSigns(compiled.rotationSeed, compiled.paddedDimension));
  for (let i = 0; i < rotated.length; i++) rotated[i]! *= factor;
  const rounded = new Float64Array(rotated.length);
  for (let attempt = 0; attempt < 1000; attempt++) {
    let roundedSquared = 0;
    for (let i = 0; i < rotated.length; i++) {
      const y = rotated[i]!;
      const low = Math.floor(y);
      // Up with probability frac(y) (to the 2^-32 grid of the coin): E[rounded] = y.
      const value = random.word() < (y - low) * 4294967296 ? low + 1 : low;
      rounded[i] = value;
      roundedSquared += value * value;
    }
    if (roundedSquared <= compiled.roundedNormSquaredBound) return rounded;
  }
  throw invalidArgument('ROUNDING_FAILED', 'conditional randomized rounding failed 1000 times: the bound is too tight for these parameters (raise roundingBeta or scale)');
}

/** The site's contribution as integers: the rounded rotated update plus its discrete Gaussian noise share. */
export function integerContribution(compiled: CompiledDistributedDp, update: ArrayLike<number>, random: RandomWords = new RandomWords()): Float64Array {
  const contribution = roundedRotatedUpdate(compiled, update, random);
  const sampler = new DiscreteGaussianSampler({ numerator: compiled.perSiteVariance, denominator: 1n }, random);
  for (let i = 0; i < contribution.length; i++) contribution[i]! += sampler.next(); // integers below 2^53: exact
  return contribution;
}

/** Integers mod 2^b as the uint32 words SecAgg masks and sums. */
export function toRing(compiled: CompiledDistributedDp, integers: Float64Array): Uint32Array {
  const modulus = 2 ** compiled.ringBits;
  const out = new Uint32Array(integers.length);
  for (let i = 0; i < integers.length; i++) out[i] = ((integers[i]! % modulus) + modulus) % modulus;
  return out;
}

/**
 * The site's contribution, each coordinate mod 2^b, as the uint32 words SecAgg masks and sums (length =
 * the padded dimension D).
 */
export function encodeDistributedDp(compiled: CompiledDistributedDp, update: ArrayLike<number>, random: RandomWords = new RandomWords()): Uint32Array {
  return toRing(compiled, integerContribution(compiled, update, random));
}

/**
 * Decodes the unmasked sum of the sites' words (summed mod 2^32): reduces mod 2^b, maps to centred
 * integers in [-2^(b-1), 2^(b-1)), divides by gamma and undoes the rotation. Returns the noisy sum of the
 * clipped updates in model units (divide by the number of sites for the mean).
 */
export function decodeDistributedDp(compiled: CompiledDistributedDp, sum: Uint32Array): Float64Array {
  if (!(sum instanceof Uint32Array) || sum.length !== compiled.paddedDimension) throw invalidArgument('INVALID_AGGREGATE', `the aggregate must be a Uint32Array of D = ${compiled.paddedDimension} words`);
  const modulus = 2 ** compiled.ringBits;
  const half = modulus / 2;
  const centred = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const residue = sum[i]! % modulus;
    centred[i] = (residue >= half ? residue - modulus : residue) / compiled.scale;
  }
  return unrotate(centred, rotationSigns(compiled.rotationSeed, compiled.paddedDimension), compiled.dimension);
}

/**
 * An upper bound on the probability that any coordinate of the sum of `participants` contributions leaves
 * [-2^(b-1), 2^(b-1)) and wraps. Per coordinate the sum is (rotated signal) + (rounding) + (noise): the
 * rotated sum of clipped updates is sub-Gaussian with proxy (n c gamma)^2 / D (Hoeffding over the random
 * signs, |sum of clipped| <= n c), the noise is a sum of n discrete Gaussians, sub-Gaussian with proxy
 * n s^2 (CKS20, Cor. 9), and rounding moves it by less than n. So P(wrap) <= 2 D exp(-(2^(b-1) - n)^2 / (2 v))
 * with v = (n c gamma)^2 / D + n s^2 (union bound over the D coordinates).
 */
export function wrapProbabilityBound(compiled: CompiledDistributedDp, participants: number): number {
  if (!Number.isSafeInteger(participants) || participants < 1) throw invalidArgument('INVALID_DP_PARAMETER', `participants must be a positive integer, got ${String(participants)}`);
  const n = participants;
  const size = compiled.paddedDimension;
  const v = (n * compiled.clipNorm * compiled.scale) ** 2 / size + n * Number(compiled.perSiteVariance);
  const margin = 2 ** (compiled.ringBits - 1) - n;
  if (margin <= 0) return 1;
  return Math.min(1, 2 * size * Math.exp(-(margin * margin) / (2 * v)));
}

/** The fewest ring bits whose wrap bound is at most `target` for `participants` sites, or undefined above 32. */
export function bitsForWrapProbability(params: DistributedDpParams, participants: number, target: number): number | undefined {
  for (let bits = 2; bits <= 32; bits++) {
    if (wrapProbabilityBound(compileDistributedDp({ ...params, ringBits: bits }), participants) <= target) return bits;
  }
  return undefined;
}

/**
 * The RDP curve of one release of the sum, from the privacy theorem for sums of discrete Gaussians of
 * KLS21 (section 3, "Privacy of the distributed discrete Gaussian"): with n = t - toleratedColluders honest
 * shares of variance s^2 each, L2 sensitivity Delta (the conditional-rounding bound) in dimension D, the
 * sum is (eps^2 / 2)-concentrated DP, i.e. RDP(alpha) = alpha eps^2 / 2, with
 *   eps = min( sqrt(Delta^2 / (n s^2) + 2 tau D), Delta / (sqrt(n) s) + tau sqrt(D) ),
 *   tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 s^2 k / (k + 1)),
 * tau measuring how far a sum of discrete Gaussians is from one discrete Gaussian of n times the variance
 * (negligible once s >= 1). The first term's tau part appears as tau D / 2 and as 2 tau D in the
 * renderings we have seen; this takes the larger (more epsilon), which is sound under either and costs
 * nothing once tau is negligible. This is the accountant's figure for participant-level DP, not the
 * Gaussian approximation.
 */
export function distributedDpRdp(compiled: CompiledDistributedDp, orders: readonly number[] = DEFAULT_ORDERS): RdpCurve {
  const n = compiled.honestShares;
  const s2 = Number(compiled.perSiteVariance);
  const delta = distributedSensitivity(compiled);
  let tau = 0;
  for (let k = 1; k < n; k++) tau += 10 * Math.exp((-2 * Math.PI * Math.PI * s2 * k) / (k + 1));
  const size = compiled.paddedDimension;
  const epsilon = Math.min(Math.sqrt((delta * delta) / (n * s2) + 2 * tau * size), delta / (Math.sqrt(n) * Math.sqrt(s2)) + tau * Math.sqrt(size));
  const rho = (epsilon * epsilon) / 2;
  return { orders: [...orders], rdp: orders.map((alpha) => alpha * rho) };
}
