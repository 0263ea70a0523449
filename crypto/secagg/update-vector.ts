/**
 * The vector a site contributes (DESIGN.md step 4): [w * delta, w, eval loss sum, correct count, eval
 * examples], quantized slot by slot with the bounds of RoundConfig and M = floor((2^31 - 1) / |U|), so
 * that the sum of |U| vectors reads back as int32 without wrapping. Under participant-level distributed
 * DP (RoundConfig.distributedDp) the update slots carry the distributed-DP encoding instead (see
 * encodeDistributedDpUpdate below).
 */
import { encodeDistributedDp } from '../dp/distributed-dp.js';
import { RandomWords } from '../dp/random-words.js';
import { quantize, RandomSource, type Segment } from '../quantize.js';
import { parameterCount, roundScale, tailLength, updateWordCount, vectorLength, type RoundConfig } from './config.js';
import { compileRoundDp } from './distributed-dp-round.js';
import { secaggInvalid } from './errors.js';
import { extraMetricSegments, extraMetricSlotCount, extraMetricSlotNames } from './metric-slots.js';

/** A site's local result for one round, before quantization. */
export interface LocalUpdate {
  /** delta = local model - global model, d values in layout order. */
  readonly delta: Float32Array | Float64Array;
  /** w = min(training examples, W) / W, in [0, 1]; see updateWeight. */
  readonly weight: number;
  /** Sum of the evaluation loss over the evaluation examples. */
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  /**
   * The task's extra metric sums (RoundConfig.metricSlots, metric-slots.ts), in slot order, already
   * bounded by the site (siteMetricSums). Absent: all 0 (a round that reports no evaluation, or a task
   * without extra slots).
   */
  readonly metricSums?: readonly number[];
}

/** w = min(examples, W) / W (DESIGN.md step 4). */
export function updateWeight(trainingExamples: number, maxWeight: number): number {
  if (!Number.isSafeInteger(trainingExamples) || trainingExamples < 0) {
    throw secaggInvalid('INVALID_UPDATE', `trainingExamples must be a non-negative integer, got ${String(trainingExamples)}`);
  }
  if (!Number.isSafeInteger(maxWeight) || maxWeight < 1) {
    throw secaggInvalid('INVALID_UPDATE', `maxWeight must be a positive integer, got ${String(maxWeight)}`);
  }
  return Math.min(trainingExamples, maxWeight) / maxWeight;
}

/**
 * Quantizes `update` into `out` (length d + 4). w * delta is quantized without materialising the
 * product: for w > 0, stochastic_round(clip(w x, -c, c) M / c) equals
 * stochastic_round(clip(x, -c/w, c/w) M / (c/w)), i.e. quantize() of delta with bound c / w. That keeps a
 * d-element temporary (4-8 MB at d = 10^6) out of the hot path.
 */
export function quantizeUpdate(config: RoundConfig, update: LocalUpdate, out: Uint32Array, random?: RandomSource): void {
  validateUpdate(config, update, out);
  if (config.distributedDp !== undefined) {
    encodeDistributedDpUpdate(config, update, out, random);
    return;
  }
  const scale = roundScale(config);
  const { layout } = config;
  let offset = 0;
  for (const segment of layout.parameterSegments) {
    const end = offset + segment.length;
    const source = update.delta.subarray(offset, end);
    const target = out.subarray(offset, end);
    if (update.weight === 0) {
      assertFinite(source, offset);
      target.fill(0);
    } else {
      const scaled: Segment[] = [{ kind: 'scaled', length: segment.length, bound: segment.bound / update.weight }];
      quantize(source, scaled, scale, target, random);
    }
    offset = end;
  }
  quantizeTail(config, update, update.weight, out.subarray(offset, offset + tailLength(config)), random);
}

/**
 * The slots after the update: w, eval loss sum, correct count, eval examples, then the task's extra
 * metric slots (metric-slots.ts extraMetricSegments).
 */
export function tailSegments(config: RoundConfig): Segment[] {
  const { layout } = config;
  return [
    { kind: 'scaled', length: 1, bound: 1 },
    { kind: 'scaled', length: 1, bound: layout.maxLossPerExample * layout.maxEvalExamples },
    { kind: 'count', length: 1, max: layout.maxEvalExamples },
    { kind: 'count', length: 1, max: layout.maxEvalExamples },
    ...extraMetricSegments(config.metricSlots, layout.maxEvalExamples),
  ];
}

function quantizeTail(config: RoundConfig, update: LocalUpdate, weight: number, out: Uint32Array, random: RandomSource | undefined): void {
  const tail = new Float64Array(tailLength(config));
  tail.set([weight, update.evalLossSum, update.evalCorrect, update.evalExamples]);
  if (update.metricSums !== undefined) tail.set(update.metricSums, 4);
  quantize(tail, tailSegments(config), roundScale(config), out, random);
}

/**
 * Under distributed DP (RoundConfig.distributedDp): the first D words are the site's clipped, rotated,
 * rounded and noised delta in Z_{2^b} (crypto/dp/distributed-dp.ts), and w is 1 whatever the site's
 * example count. Weights must be uniform: the DP guarantee bounds what one site's whole update can change
 * in the sum (its clip norm); w * delta with w from the site's data would make the weight itself an
 * unnoised release of the example count (the w slot is summed exactly) and the average's sensitivity
 * depend on w. A site with no usable update (w = 0: no examples, or training diverged) still sends its
 * noise share with a zero delta, so the sum keeps the noise the guarantee counts on.
 */
function encodeDistributedDpUpdate(config: RoundConfig, update: LocalUpdate, out: Uint32Array, random: RandomSource | undefined): void {
  const compiled = compileRoundDp(config);
  const source = random ?? new RandomSource();
  const delta = update.weight === 0 ? new Float64Array(update.delta.length) : update.delta;
  if (update.weight === 0) assertFinite(update.delta, 0);
  const words = encodeDistributedDp(compiled, delta, new RandomWords(source));
  out.set(words, 0);
  quantizeTail(config, update, 1, out.subarray(words.length, words.length + tailLength(config)), source);
}

function validateUpdate(config: RoundConfig, update: LocalUpdate, out: Uint32Array): void {
  const d = parameterCount(config);
  if (!(update.delta instanceof Float32Array) && !(update.delta instanceof Float64Array)) {
    throw secaggInvalid('INVALID_UPDATE', 'update.delta must be a Float32Array or Float64Array');
  }
  if (update.delta.length !== d) {
    throw secaggInvalid('INVALID_UPDATE', `update.delta must have d = ${d} elements (RoundConfig.layout), got ${update.delta.length}`);
  }
  if (!(out instanceof Uint32Array) || out.length !== vectorLength(config)) {
    throw secaggInvalid('INVALID_UPDATE', `output must be a Uint32Array of ${updateWordCount(config)} + ${tailLength(config)} = ${vectorLength(config)} elements`);
  }
  if (typeof update.weight !== 'number' || !(update.weight >= 0 && update.weight <= 1)) {
    throw secaggInvalid('INVALID_UPDATE', `update.weight must be a number in [0, 1] (w = min(examples, W) / W), got ${String(update.weight)}`);
  }
  if (typeof update.evalLossSum !== 'number' || !Number.isFinite(update.evalLossSum) || update.evalLossSum < 0) {
    throw secaggInvalid('INVALID_UPDATE', `update.evalLossSum must be a finite non-negative number, got ${String(update.evalLossSum)}`);
  }
  if (!Number.isSafeInteger(update.evalExamples) || update.evalExamples < 0 || update.evalExamples > config.layout.maxEvalExamples) {
    throw secaggInvalid('INVALID_UPDATE', `update.evalExamples must be an integer in [0, E_max = ${config.layout.maxEvalExamples}], got ${String(update.evalExamples)}`);
  }
  if (!Number.isSafeInteger(update.evalCorrect) || update.evalCorrect < 0 || update.evalCorrect > update.evalExamples) {
    throw secaggInvalid('INVALID_UPDATE', `update.evalCorrect must be an integer in [0, evalExamples = ${update.evalExamples}], got ${String(update.evalCorrect)}`);
  }
  validateMetricSums(config, update);
  // The last line of a site's defence: a round's purpose decides which slots may carry anything at all.
  const extraSums = update.metricSums ?? [];
  if (config.purpose === 'train' && (update.evalLossSum !== 0 || update.evalCorrect !== 0 || update.evalExamples !== 0 || extraSums.some((value) => value !== 0))) {
    throw secaggInvalid('INVALID_UPDATE', "a round with purpose 'train' carries no evaluation: evalLossSum, evalCorrect, evalExamples and metricSums must be 0");
  }
  if (config.purpose === 'evaluate' && update.weight !== 0) {
    throw secaggInvalid('INVALID_UPDATE', `an evaluation-only round carries no update: weight must be 0, got ${update.weight}`);
  }
}

/**
 * The extra metric sums: exactly RoundConfig.metricSlots' count, finite (quantize() clips a scaled sum
 * to its round bound and refuses NaN; a count must be a whole number in [0, E_max * T]), and none without
 * an evaluation (evalExamples 0 means every sum is 0).
 */
function validateMetricSums(config: RoundConfig, update: LocalUpdate): void {
  const sums = update.metricSums;
  if (sums === undefined) return;
  const expected = extraMetricSlotCount(config.metricSlots);
  if (!Array.isArray(sums) || sums.length !== expected) {
    throw secaggInvalid('INVALID_UPDATE', `update.metricSums must hold ${expected} values (RoundConfig.metricSlots), got ${Array.isArray(sums) ? sums.length : typeof sums}`);
  }
  const names = extraMetricSlotNames(config.metricSlots);
  for (const [index, value] of sums.entries()) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw secaggInvalid('INVALID_UPDATE', `update.metricSums[${index}] (${names[index] ?? '?'}) must be a finite number, got ${String(value)}`);
    }
    if (update.evalExamples === 0 && value !== 0) {
      throw secaggInvalid('INVALID_UPDATE', `update.metricSums[${index}] (${names[index] ?? '?'}) must be 0 when no example was evaluated, got ${value}`);
    }
  }
}

function assertFinite(values: Float32Array | Float64Array, offset: number): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw secaggInvalid('INVALID_UPDATE', `update.delta[${offset + i}] must be finite, got ${String(values[i])}`);
    }
  }
}
