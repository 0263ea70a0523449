/**
 * RoundConfig.distributedDp: the participant-level DP of a round (crypto/dp/distributed-dp.ts), as the
 * coordinator states it and every site signs it - the task's public parameters (mechanism, clip norm,
 * noise multiplier, tolerated colluders, ring bits) plus the two values each round derives from them
 * (the scale gamma and the rotation seed; distributed-dp-round.ts says how, and a site recomputes both).
 * Its validation and canonical encoding live here, apart from the derivations, so that config.ts and
 * config-codec.ts can use them without an import cycle.
 */
import { encodeFields, u32be, utf8 } from '../bytes.js';
import { secaggInvalid } from './errors.js';
import { FieldReader, f64be } from './fields.js';

export const DISTRIBUTED_DP_MECHANISMS = ['discrete_gaussian'] as const;
export type DistributedDpMechanism = (typeof DISTRIBUTED_DP_MECHANISMS)[number];

/** Mechanism codes on the wire (0 is never used). */
const MECHANISM_CODES: Readonly<Record<DistributedDpMechanism, number>> = { discrete_gaussian: 1 };

/** What a task asks of every round (model/task.ts privacy.participantLevel, ringBits resolved). */
export interface DistributedDpRequirement {
  readonly mechanism: DistributedDpMechanism;
  /** L2 clip norm c of a site's whole update. */
  readonly clipNorm: number;
  /** The unmasked sum carries noise of standard deviation noiseMultiplier x clipNorm per coordinate. */
  readonly noiseMultiplier: number;
  /** Survivors whose noise may be known to the coordinator; the rest must carry all the noise. */
  readonly toleratedColluders: number;
  /** b: contributions live in Z_{2^b} (2 <= b <= 32). */
  readonly ringBits: number;
}

/** RoundConfig.distributedDp: the requirement plus what this round derives from it. */
export interface RoundDistributedDp extends DistributedDpRequirement {
  /** gamma: ring units per model unit. */
  readonly scale: number;
  /** Public seed of the randomized Hadamard rotation's signs, derived from the round id. */
  readonly rotationSeed: Uint8Array;
}

export const DP_ROTATION_SEED_LENGTH = 32;
const DISTRIBUTED_DP_LABEL = 'fedgate/v1/distributed-dp';

type Bad = (field: string, message: string) => never;

/** Structural checks (the site's own comparison with its task is distributed-dp-round.ts). */
export function validateDistributedDp(dp: RoundDistributedDp, threshold: number, bad: Bad): void {
  if (typeof dp !== 'object' || dp === null) bad('distributedDp', 'must be an object');
  if (!DISTRIBUTED_DP_MECHANISMS.includes(dp.mechanism)) bad('distributedDp.mechanism', `must be one of ${DISTRIBUTED_DP_MECHANISMS.join(', ')}, got ${String(dp.mechanism)}`);
  for (const key of ['clipNorm', 'noiseMultiplier', 'scale'] as const) {
    const value = dp[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) bad(`distributedDp.${key}`, `must be a finite number > 0, got ${String(value)}`);
  }
  if (!Number.isSafeInteger(dp.toleratedColluders) || dp.toleratedColluders < 0 || dp.toleratedColluders >= threshold) {
    bad('distributedDp.toleratedColluders', `must be an integer in [0, t - 1 = ${threshold - 1}] (t survivors carry the noise, fewer colluders), got ${String(dp.toleratedColluders)}`);
  }
  if (!Number.isInteger(dp.ringBits) || dp.ringBits < 2 || dp.ringBits > 32) bad('distributedDp.ringBits', `must be an integer in [2, 32] (SecAgg sums in Z_{2^32}), got ${String(dp.ringBits)}`);
  if (!(dp.rotationSeed instanceof Uint8Array) || dp.rotationSeed.length !== DP_ROTATION_SEED_LENGTH) bad('distributedDp.rotationSeed', `must be ${DP_ROTATION_SEED_LENGTH} bytes`);
}

/** The canonical field: label, mechanism code, c, noise multiplier, colluders, b, gamma, rotation seed. */
export function encodeDistributedDpField(dp: RoundDistributedDp): Uint8Array {
  return encodeFields([
    utf8(DISTRIBUTED_DP_LABEL),
    Uint8Array.of(MECHANISM_CODES[dp.mechanism]),
    f64be(dp.clipNorm),
    f64be(dp.noiseMultiplier),
    u32be(dp.toleratedColluders),
    u32be(dp.ringBits),
    f64be(dp.scale),
    dp.rotationSeed,
  ]);
}

export function decodeDistributedDpField(bytes: Uint8Array): RoundDistributedDp {
  const reader = new FieldReader(bytes, 'RoundConfig.distributedDp');
  if (reader.text('label') !== DISTRIBUTED_DP_LABEL) throw secaggInvalid('INVALID_ENCODING', `RoundConfig.distributedDp: label must be ${DISTRIBUTED_DP_LABEL}`);
  const code = reader.fixed('mechanism', 1)[0] as number;
  const mechanism = DISTRIBUTED_DP_MECHANISMS.find((name) => MECHANISM_CODES[name] === code);
  if (mechanism === undefined) throw secaggInvalid('INVALID_ENCODING', `RoundConfig.distributedDp.mechanism: code ${code} is unknown (1 = discrete_gaussian)`);
  const dp: RoundDistributedDp = {
    mechanism,
    clipNorm: reader.f64('clipNorm'),
    noiseMultiplier: reader.f64('noiseMultiplier'),
    toleratedColluders: reader.u32('toleratedColluders'),
    ringBits: reader.u32('ringBits'),
    scale: reader.f64('scale'),
    rotationSeed: new Uint8Array(reader.fixed('rotationSeed', DP_ROTATION_SEED_LENGTH)),
  };
  reader.end();
  return dp;
}
