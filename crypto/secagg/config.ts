/**
 * RoundConfig: everything a round fixes before any key is made (DESIGN.md "A round", step 1), its
 * defaults and validation. Its canonical byte encoding and hash H(RoundConfig), which every signature of
 * the round covers, live in config-codec.ts; what a site accepts is policy.ts.
 */
import { assertBytes, compareBytes, utf8 } from '../bytes.js';
import { SHA256_LENGTH } from '../hash.js';
import { quantizationScale, type Segment } from '../quantize.js';
import { paddedDimension } from '../dp/hadamard.js';
import { validateDistributedDp, type RoundDistributedDp } from './dp-fields.js';
import { extraMetricSegments, extraMetricSlotCount, validateMetricSlots, type RoundMetricSlots } from './metric-slots.js';
import { secaggInvalid } from './errors.js';
import { marginThreshold, twoThirdsThreshold } from './margin.js';

/** Round id = 8-byte big-endian counter || 16 random bytes (DESIGN.md, "The task, the hello, the round id"). */
export const ROUND_ID_LENGTH = 24;
/** Shamir x coordinates are 1..65535, one per member of U1. */
export const MAX_PARTICIPANTS = 65_535;
/** Longest stage deadline a RoundConfig carries (24 h). */
export const MAX_DEADLINE_MS = 24 * 60 * 60 * 1000;

/** Stage deadlines in milliseconds (DESIGN.md: 30 s each, 600 s for MaskedInput with training). */
export interface StageDeadlines {
  /** AdvertiseKeys including the graph exchange (key list, nonce reveal). */
  readonly advertiseKeysMs: number;
  readonly shareKeysMs: number;
  /** MaskedInput, local training included. */
  readonly maskedInputMs: number;
  readonly consistencyCheckMs: number;
  readonly unmaskMs: number;
  readonly commitMs: number;
}

export const DEFAULT_DEADLINES: StageDeadlines = Object.freeze({
  advertiseKeysMs: 30_000,
  shareKeysMs: 30_000,
  maskedInputMs: 600_000,
  consistencyCheckMs: 30_000,
  unmaskMs: 30_000,
  commitMs: 30_000,
});

/**
 * The layout of the vector every site uploads (DESIGN.md step 4): [w * delta, w, eval loss sum,
 * correct count, eval examples]. `parameterSegments` carry w * delta (one per tensor if bounds differ),
 * each slot clipped to [-bound, bound] (the clipping bound c).
 */
export interface UpdateLayout {
  readonly parameterSegments: readonly { readonly length: number; readonly bound: number }[];
  /** L_max: the largest loss one evaluation example contributes; the loss-sum slot is bounded by L_max * E_max. */
  readonly maxLossPerExample: number;
  /** E_max: the most evaluation examples one site may report (bound of both count slots). */
  readonly maxEvalExamples: number;
}

export type HyperParameterValue = string | number | boolean;

/**
 * What a round asks of its sites, fixed in RoundConfig (so H(RoundConfig) binds it):
 * - 'train_and_evaluate' (the default): train on the round's model and report the federated evaluation
 *   of that model in the metric slots (DESIGN.md step 4);
 * - 'train': train, and report no evaluation (metric slots 0): the round's model was already evaluated
 *   by an evaluation-only round, and a site reports the metrics of one model at most once;
 * - 'evaluate': an evaluation-only round on a committed model: no training, no update (d = 0, w = 0),
 *   only the metric slots; the round ends after Unmask, with no commit and no new model.
 */
export type RoundPurpose = 'train_and_evaluate' | 'train' | 'evaluate';

export const ROUND_PURPOSES: readonly RoundPurpose[] = ['train_and_evaluate', 'train', 'evaluate'];

export interface RoundConfig {
  readonly federationId: string;
  readonly roundId: Uint8Array;
  /** U: the selected participants, in UTF-8 byte order of their ids. */
  readonly participants: readonly string[];
  readonly taskHash: Uint8Array;
  readonly modelHash: Uint8Array;
  /** Hash of the server optimiser's state before this round. */
  readonly optimizerStateHash: Uint8Array;
  readonly hyperParameters: Readonly<Record<string, HyperParameterValue>>;
  /** t: shares needed to reconstruct a secret. */
  readonly reconstructionThreshold: number;
  /** k: neighbours of each site (k >= |U| - 1 means the complete graph). */
  readonly neighbourDegree: number;
  readonly layout: UpdateLayout;
  /** W: examples at which a site's weight w = min(examples, W) / W reaches 1. */
  readonly maxWeight: number;
  readonly deadlines: StageDeadlines;
  /** Upload quantized vectors without masks (only to sites whose policy allows it). */
  readonly plaintext: boolean;
  /** What the sites do in this round (see RoundPurpose). */
  readonly purpose: RoundPurpose;
  /**
   * Participant-level distributed DP (dp-fields.ts, distributed-dp-round.ts): when present, the delta
   * slots carry each site's clipped, rotated, rounded and noised update in Z_{2^b} (D words, D = d padded
   * to a power of two) instead of the quantized w * delta, and every site's w is 1. Absent: none.
   */
  readonly distributedDp?: RoundDistributedDp;
  /**
   * The extra metric slots of the task's loss (metric-slots.ts): multi-label label counts or regression
   * error and target sums after the three slots every round has. Absent for class-index tasks (their
   * configs keep their bytes). Present in every round of a task that has them, whatever the purpose
   * ('train' rounds send them as 0), so a task's vector length never changes; each site checks it
   * against its own task before making any key.
   */
  readonly metricSlots?: RoundMetricSlots;
}

/** Input of createRoundConfig: threshold, deadlines, hyper-parameters and plaintext have defaults. */
export type RoundConfigInput = Omit<RoundConfig, 'reconstructionThreshold' | 'deadlines' | 'plaintext' | 'hyperParameters' | 'participants' | 'purpose'> & {
  readonly participants: readonly string[];
  /** @default defaultThreshold(k, plaintext): ceil(2(k+1)/3), 3 for k = 2 unless plaintext */
  readonly reconstructionThreshold?: number;
  /** @default DEFAULT_DEADLINES, per stage */
  readonly deadlines?: Partial<StageDeadlines>;
  /** @default false */
  readonly plaintext?: boolean;
  /** @default {} */
  readonly hyperParameters?: Readonly<Record<string, HyperParameterValue>>;
  /** @default 'train_and_evaluate' */
  readonly purpose?: RoundPurpose;
};

/**
 * Default t (DESIGN.md step 3): ceil(2(k+1)/3), a two-thirds majority of each closed neighbourhood,
 * raised where needed so that the round meets a site's default margin (margin.ts): one tolerated
 * colluder. Only k = 2 (three sites) is raised, to t = 3; k = 1 (two sites) tolerates no colluder at any
 * t and keeps t = 2, which sites with the default policy refuse. A plaintext round has no masks to
 * protect, so it keeps the two-thirds threshold and with it the dropout tolerance.
 */
export function defaultThreshold(neighbourDegree: number, plaintext = false): number {
  const twoThirds = twoThirdsThreshold(neighbourDegree);
  return plaintext ? twoThirds : (marginThreshold(neighbourDegree) ?? twoThirds);
}

/** Builds a RoundConfig with defaults applied and participants sorted, then validates it. */
export function createRoundConfig(input: RoundConfigInput): RoundConfig {
  const config: RoundConfig = {
    federationId: input.federationId,
    roundId: input.roundId,
    participants: [...input.participants].sort((a, b) => compareBytes(utf8(a), utf8(b))),
    taskHash: input.taskHash,
    modelHash: input.modelHash,
    optimizerStateHash: input.optimizerStateHash,
    hyperParameters: { ...(input.hyperParameters ?? {}) },
    reconstructionThreshold: input.reconstructionThreshold ?? defaultThreshold(input.neighbourDegree, input.plaintext ?? false),
    neighbourDegree: input.neighbourDegree,
    layout: input.layout,
    maxWeight: input.maxWeight,
    deadlines: { ...DEFAULT_DEADLINES, ...input.deadlines },
    plaintext: input.plaintext ?? false,
    purpose: input.purpose ?? 'train_and_evaluate',
    ...(input.distributedDp === undefined ? {} : { distributedDp: input.distributedDp }),
    ...(input.metricSlots === undefined ? {} : { metricSlots: input.metricSlots }),
  };
  validateRoundConfig(config);
  return config;
}

/** Round id from the persisted counter and 16 fresh random bytes (never reused, even after a crash). */
export function makeRoundId(counter: bigint | number, random: Uint8Array): Uint8Array {
  assertBytes(random, 'random', 16);
  const value = BigInt(counter);
  if (value < 0n || value >= 1n << 64n) {
    throw secaggInvalid('INVALID_ROUND_COUNTER', `round counter must be in [0, 2^64), got ${value}`);
  }
  const out = new Uint8Array(ROUND_ID_LENGTH);
  new DataView(out.buffer).setBigUint64(0, value, false);
  out.set(random, 8);
  return out;
}

/** The counter part of a round id. */
export function roundCounter(roundId: Uint8Array): bigint {
  assertBytes(roundId, 'roundId', ROUND_ID_LENGTH);
  return new DataView(roundId.buffer, roundId.byteOffset, roundId.byteLength).getBigUint64(0, false);
}

/** M = floor((2^31 - 1) / |U|): the quantization scale of this round (DESIGN.md step 4). */
export function roundScale(config: RoundConfig): number {
  return quantizationScale(config.participants.length);
}

/**
 * The segments of the upload vector for quantize(): the parameter segments (w * delta, bound c), then
 * w (bound 1), the eval loss sum (bound L_max * E_max), correct count and eval examples (counts <= E_max).
 */
export function roundSegments(config: RoundConfig): Segment[] {
  const { layout } = config;
  return [
    ...layout.parameterSegments.map((segment): Segment => ({ kind: 'scaled', length: segment.length, bound: segment.bound })),
    { kind: 'scaled', length: 1, bound: 1 },
    { kind: 'scaled', length: 1, bound: layout.maxLossPerExample * layout.maxEvalExamples },
    { kind: 'count', length: 1, max: layout.maxEvalExamples },
    { kind: 'count', length: 1, max: layout.maxEvalExamples },
    ...extraMetricSegments(config.metricSlots, layout.maxEvalExamples),
  ];
}

/** Slots after the update: w, the three metric slots every round has, and the task's extra metric slots. */
export function tailLength(config: RoundConfig): number {
  return 4 + extraMetricSlotCount(config.metricSlots);
}

/** Number of parameter slots d (the delta's length). */
export function parameterCount(config: RoundConfig): number {
  return config.layout.parameterSegments.reduce((sum, segment) => sum + segment.length, 0);
}

/**
 * Words of the upload that carry the update: d, or under distributed DP the rotated length D (d padded to
 * a power of two).
 */
export function updateWordCount(config: RoundConfig): number {
  const d = parameterCount(config);
  return config.distributedDp === undefined ? d : paddedDimension(d);
}

/** Length of the upload vector: the update's words + w + three metric slots + the task's extra metric slots. */
export function vectorLength(config: RoundConfig): number {
  return updateWordCount(config) + tailLength(config);
}

/**
 * Structural validation (independent of any site's policy). Throws SecAggError INVALID_ARGUMENT naming
 * the field. Requirements of DESIGN.md step 1: (k+1)/2 < t <= k+1; k even unless k >= |U| - 1; counts
 * exact, so E_max <= M.
 */
export function validateRoundConfig(config: RoundConfig): void {
  const bad = (field: string, message: string): never => {
    throw secaggInvalid('INVALID_ROUND_CONFIG', `RoundConfig.${field} ${message}`, { stage: 'round_config' });
  };
  if (typeof config !== 'object' || config === null) bad('', 'must be an object');
  if (typeof config.federationId !== 'string' || config.federationId.length === 0) bad('federationId', 'must be a non-empty string');
  if (!(config.roundId instanceof Uint8Array) || config.roundId.length !== ROUND_ID_LENGTH) {
    bad('roundId', `must be ${ROUND_ID_LENGTH} bytes (8-byte counter || 16 random bytes)`);
  }
  for (const field of ['taskHash', 'modelHash', 'optimizerStateHash'] as const) {
    if (!(config[field] instanceof Uint8Array) || config[field].length !== SHA256_LENGTH) bad(field, `must be a ${SHA256_LENGTH}-byte SHA-256 digest`);
  }
  validateParticipants(config.participants, bad);
  const count = config.participants.length;
  const k = config.neighbourDegree;
  const t = config.reconstructionThreshold;
  if (!Number.isInteger(k) || k < 1 || k > count - 1) bad('neighbourDegree', `must be an integer in [1, |U| - 1 = ${count - 1}], got ${String(k)}`);
  if (k % 2 !== 0 && k < count - 1) bad('neighbourDegree', `must be even unless it is |U| - 1 = ${count - 1} (complete graph), got ${k}`);
  if (!Number.isInteger(t) || t < 1 || t > k + 1) {
    bad('reconstructionThreshold', `must be an integer with (k+1)/2 < t <= k+1 = ${k + 1}, got ${String(t)}`);
  }
  if (2 * t <= k + 1) {
    // Its own reason, so a site that receives such a RoundStart refuses it by name (THRESHOLD_TOO_LOW).
    throw secaggInvalid('THRESHOLD_TOO_LOW', `RoundConfig.reconstructionThreshold t = ${t} must exceed (k+1)/2 = ${(k + 1) / 2}; a minority of a neighbourhood could otherwise reconstruct`, { stage: 'round_config' });
  }
  if (!ROUND_PURPOSES.includes(config.purpose)) bad('purpose', `must be one of ${ROUND_PURPOSES.join(', ')}, got ${String(config.purpose)}`);
  validateLayout(config.layout, quantizationScale(count), config.purpose === 'evaluate', bad);
  if (!Number.isSafeInteger(config.maxWeight) || config.maxWeight < 1) bad('maxWeight', `must be a positive integer, got ${String(config.maxWeight)}`);
  for (const key of Object.keys(DEFAULT_DEADLINES) as (keyof StageDeadlines)[]) {
    const value = config.deadlines?.[key];
    if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_DEADLINE_MS) {
      bad(`deadlines.${key}`, `must be an integer number of milliseconds in [1, ${MAX_DEADLINE_MS}], got ${String(value)}`);
    }
  }
  if (typeof config.plaintext !== 'boolean') bad('plaintext', 'must be a boolean');
  if (config.distributedDp !== undefined) {
    validateDistributedDp(config.distributedDp, t, bad);
    if (config.purpose === 'evaluate') bad('distributedDp', "must be absent in an evaluation-only round (purpose 'evaluate' carries no update)");
    // Each vector alone carries only 1/(t - colluders) of the noise: without masks it would be nearly in the clear.
    if (config.plaintext) bad('distributedDp', 'needs masks: in a plaintext round the coordinator sees each vector with only its share of the noise');
  }
  if (config.metricSlots !== undefined) validateMetricSlots(config.metricSlots, config.layout.maxEvalExamples, quantizationScale(count), bad);
  if (typeof config.hyperParameters !== 'object' || config.hyperParameters === null) bad('hyperParameters', 'must be an object');
  for (const [key, value] of Object.entries(config.hyperParameters)) {
    const ok = typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (key.length === 0 || !ok) bad(`hyperParameters[${JSON.stringify(key)}]`, 'must have a non-empty key and a string, boolean or finite number value');
  }
}

function validateParticipants(participants: readonly string[], bad: (field: string, message: string) => never): void {
  if (!Array.isArray(participants) || participants.length < 2 || participants.length > MAX_PARTICIPANTS) {
    bad('participants', `must list between 2 and ${MAX_PARTICIPANTS} site ids`);
  }
  let previous: Uint8Array | undefined;
  for (const [index, siteId] of participants.entries()) {
    if (typeof siteId !== 'string' || siteId.length === 0) bad(`participants[${index}]`, 'must be a non-empty string');
    const bytes = utf8(siteId);
    if (previous !== undefined && compareBytes(previous, bytes) >= 0) {
      bad(`participants[${index}]`, `must be distinct and in UTF-8 byte order, got ${JSON.stringify(siteId)} after ${JSON.stringify(participants[index - 1])}`);
    }
    previous = bytes;
  }
}

/** An evaluation-only round carries no update: its layout has no parameter segments (d = 0); every other round has some. */
function validateLayout(layout: UpdateLayout, scale: number, evaluationOnly: boolean, bad: (field: string, message: string) => never): void {
  if (typeof layout !== 'object' || layout === null) bad('layout', 'must be an object');
  if (!Array.isArray(layout.parameterSegments)) bad('layout.parameterSegments', 'must be an array');
  if (evaluationOnly && layout.parameterSegments.length !== 0) {
    bad('layout.parameterSegments', `must be empty in an evaluation-only round (purpose 'evaluate': no update, only metrics), got ${layout.parameterSegments.length} segment(s)`);
  }
  if (!evaluationOnly && layout.parameterSegments.length === 0) {
    bad('layout.parameterSegments', 'must be a non-empty array');
  }
  let total = 0;
  for (const [index, segment] of layout.parameterSegments.entries()) {
    if (!Number.isSafeInteger(segment.length) || segment.length < 1) bad(`layout.parameterSegments[${index}].length`, `must be a positive integer, got ${String(segment.length)}`);
    if (!Number.isFinite(segment.bound) || segment.bound <= 0) bad(`layout.parameterSegments[${index}].bound`, `must be a finite positive number, got ${String(segment.bound)}`);
    total += segment.length;
  }
  if (total > 0x3fff_ffff) bad('layout.parameterSegments', `must hold at most 2^30 - 1 parameters, got ${total}`);
  if (!Number.isFinite(layout.maxLossPerExample) || layout.maxLossPerExample <= 0) {
    bad('layout.maxLossPerExample', `must be a finite positive number, got ${String(layout.maxLossPerExample)}`);
  }
  if (!Number.isSafeInteger(layout.maxEvalExamples) || layout.maxEvalExamples < 1 || layout.maxEvalExamples > scale) {
    bad('layout.maxEvalExamples', `must be an integer in [1, M = ${scale}] so counts sum without wrapping, got ${String(layout.maxEvalExamples)}`);
  }
}
