/**
 * RoundConfig.metricSlots: the evaluation sums beyond (loss sum, correct count, examples) that travel in
 * the masked upload, so the coordinator learns only their sum over the survivors (docs/protocol.md
 * "Quantisation", "metric slots"). Which sums, and how many, follows from the task's loss alone:
 * - class-index tasks (cross_entropy): none; the field is absent and the config keeps the bytes and the
 *   hash it had before metric slots existed;
 * - multi-label (binary_cross_entropy): true positives, false positives, false negatives over every
 *   (example, label) pair: exact counts;
 * - regression (mse, l1, huber): sum r^2, sum |r|, sum y, sum y^2 over every target element (r = z - y):
 *   scaled fixed-point slots.
 * A site checks the field against its own pinned task before it makes any key (checkRoundMetricSlots),
 * so a coordinator can neither change what a slot means nor drop slots; the bounds of the scaled slots
 * only set their resolution (every slot is still summed under the masks). Validation and the canonical
 * encoding live here, apart from config.ts, so config.ts and config-codec.ts use them without a cycle.
 */
import { encodeFields, u32be, utf8 } from '../bytes.js';
import type { Segment } from '../quantize.js';
import { secaggInvalid, secaggPrecondition, type SecAggError } from './errors.js';
import { FieldReader, f64be } from './fields.js';

export type MetricSlotKind = 'multi_label' | 'regression';

/** The extra metric slots of a round; absent (undefined) for class-index tasks. */
export type RoundMetricSlots =
  | { readonly kind: 'multi_label'; /** T: labels per example. */ readonly outputs: number }
  | {
      readonly kind: 'regression';
      /** T: targets per example. */
      readonly outputs: number;
      /** Y_max: the largest |y| of one target element the sums are sized for. */
      readonly maxAbsTarget: number;
      /** R_max: the largest |z - y| of one target element the sums are sized for. */
      readonly maxAbsError: number;
    };

/**
 * The evaluation sums of each kind, in slot order, named as the evaluation graph names its outputs
 * (model/train/prepare.ts; crypto imports nothing of model/, so the names are repeated here and a test
 * checks they agree with evaluationOutputs).
 */
export const METRIC_SLOT_NAMES: Readonly<Record<MetricSlotKind, readonly string[]>> = Object.freeze({
  multi_label: Object.freeze(['true_positives', 'false_positives', 'false_negatives']),
  regression: Object.freeze(['squared_error_sum', 'absolute_error_sum', 'target_sum', 'target_square_sum']),
});

/** What a site's pinned task says about its evaluation (model/task.ts targetKindOf, labels.length). */
export interface TaskEvaluationShape {
  readonly kind: 'class' | MetricSlotKind;
  readonly outputs: number;
}

/** Largest T a RoundConfig accepts (one output per label or target; far above any real task). */
export const MAX_METRIC_OUTPUTS = 65_535;
const METRIC_SLOTS_LABEL = 'fedgate/v1/metric-slots';
/** Kind codes on the wire (0 is never used). */
const KIND_CODES: Readonly<Record<MetricSlotKind, number>> = { multi_label: 1, regression: 2 };

type Bad = (field: string, message: string) => never;

/** Number of extra metric slots (after w, loss sum, correct count and examples). */
export function extraMetricSlotCount(slots: RoundMetricSlots | undefined): number {
  return slots === undefined ? 0 : METRIC_SLOT_NAMES[slots.kind].length;
}

/** Names of the extra metric slots, in slot order. */
export function extraMetricSlotNames(slots: RoundMetricSlots | undefined): readonly string[] {
  return slots === undefined ? [] : METRIC_SLOT_NAMES[slots.kind];
}

/**
 * Bounds of the extra slots for quantize() (E = E_max, T = outputs): multi-label counts up to E * T each,
 * sent exactly; regression sums scaled with R = R_max^2 E T, R_max E T, Y_max E T and Y_max^2 E T.
 */
export function extraMetricSegments(slots: RoundMetricSlots | undefined, maxEvalExamples: number): Segment[] {
  if (slots === undefined) return [];
  const elements = maxEvalExamples * slots.outputs;
  if (slots.kind === 'multi_label') return METRIC_SLOT_NAMES.multi_label.map((): Segment => ({ kind: 'count', length: 1, max: elements }));
  const { maxAbsError: error, maxAbsTarget: target } = slots;
  return [error * error * elements, error * elements, target * elements, target * target * elements].map((bound): Segment => ({ kind: 'scaled', length: 1, bound }));
}

/**
 * Per-site bounds of the extra slots for a site that evaluated `examples` examples: the same products
 * with the site's own element count (examples * T) instead of E_max * T. [lower, upper] per slot.
 */
export function siteMetricBounds(slots: RoundMetricSlots, examples: number): readonly (readonly [number, number])[] {
  const elements = examples * slots.outputs;
  if (slots.kind === 'multi_label') return METRIC_SLOT_NAMES.multi_label.map(() => [0, elements] as const);
  const { maxAbsError: error, maxAbsTarget: target } = slots;
  return [
    [0, error * error * elements],
    [0, error * elements],
    [-target * elements, target * elements],
    [0, target * target * elements],
  ];
}

/** Structural checks (the site's comparison with its task is checkRoundMetricSlots). `scale` is M. */
export function validateMetricSlots(slots: RoundMetricSlots, maxEvalExamples: number, scale: number, bad: Bad): void {
  if (typeof slots !== 'object' || slots === null) bad('metricSlots', 'must be an object');
  if (!Object.hasOwn(KIND_CODES, slots.kind)) bad('metricSlots.kind', `must be multi_label or regression (class-index tasks have no extra slots: leave the field out), got ${String(slots.kind)}`);
  if (!Number.isSafeInteger(slots.outputs) || slots.outputs < 1 || slots.outputs > MAX_METRIC_OUTPUTS) {
    bad('metricSlots.outputs', `must be an integer in [1, ${MAX_METRIC_OUTPUTS}], got ${String(slots.outputs)}`);
  }
  if (slots.kind === 'multi_label') {
    // Counts travel exactly: |U| of them sum without wrapping only if each is at most M.
    if (maxEvalExamples * slots.outputs > scale) {
      bad('metricSlots.outputs', `times E_max = ${maxEvalExamples} must be at most M = ${scale} so the label counts sum without wrapping, got ${slots.outputs}; lower secagg.max_eval_examples`);
    }
    return;
  }
  for (const key of ['maxAbsTarget', 'maxAbsError'] as const) {
    const value = slots[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) bad(`metricSlots.${key}`, `must be a finite number > 0, got ${String(value)}`);
  }
  for (const segment of extraMetricSegments(slots, maxEvalExamples)) {
    if (segment.kind === 'scaled' && !Number.isFinite(segment.bound)) {
      bad('metricSlots', `bounds times E_max * outputs overflow a double (maxAbsTarget ${slots.maxAbsTarget}, maxAbsError ${slots.maxAbsError})`);
    }
  }
}

/** The canonical field: label, kind code, T, and for regression Y_max and R_max. */
export function encodeMetricSlotsField(slots: RoundMetricSlots): Uint8Array {
  return encodeFields([
    utf8(METRIC_SLOTS_LABEL),
    Uint8Array.of(KIND_CODES[slots.kind]),
    u32be(slots.outputs),
    ...(slots.kind === 'regression' ? [f64be(slots.maxAbsTarget), f64be(slots.maxAbsError)] : []),
  ]);
}

/** Whether a trailing RoundConfig field is the metric-slots field (by its label). */
export function isMetricSlotsField(bytes: Uint8Array): boolean {
  try {
    return new FieldReader(bytes, 'RoundConfig trailing field').text('label') === METRIC_SLOTS_LABEL;
  } catch {
    return false;
  }
}

export function decodeMetricSlotsField(bytes: Uint8Array): RoundMetricSlots {
  const reader = new FieldReader(bytes, 'RoundConfig.metricSlots');
  if (reader.text('label') !== METRIC_SLOTS_LABEL) throw secaggInvalid('INVALID_ENCODING', `RoundConfig.metricSlots: label must be ${METRIC_SLOTS_LABEL}`);
  const code = reader.fixed('kind', 1)[0] as number;
  const kind = (Object.keys(KIND_CODES) as MetricSlotKind[]).find((name) => KIND_CODES[name] === code);
  if (kind === undefined) throw secaggInvalid('INVALID_ENCODING', `RoundConfig.metricSlots.kind: code ${code} is unknown (1 = multi_label, 2 = regression)`);
  const outputs = reader.u32('outputs');
  const slots: RoundMetricSlots = kind === 'multi_label' ? { kind, outputs } : { kind, outputs, maxAbsTarget: reader.f64('maxAbsTarget'), maxAbsError: reader.f64('maxAbsError') };
  reader.end();
  return slots;
}

/**
 * The site's check (before any key): RoundConfig.metricSlots must be what its own pinned task implies -
 * absent for a class-index task, else the task's kind and output count. Throws SecAggError
 * FAILED_PRECONDITION 'METRIC_SLOTS_MISMATCH'; the message names the round's public values and the task's
 * kind only. Without it a coordinator could drop the slots (a shorter vector, metrics that never add up)
 * or have a multi-label site's counts read as a regression's sums.
 */
export function checkRoundMetricSlots(config: { readonly metricSlots?: RoundMetricSlots | undefined }, task: TaskEvaluationShape, site?: string): void {
  const context = { stage: 'round_config', ...(site === undefined ? {} : { site }) };
  const slots = config.metricSlots;
  const mismatch = (message: string): SecAggError => secaggPrecondition('METRIC_SLOTS_MISMATCH', message, context);
  if (task.kind === 'class') {
    if (slots !== undefined) throw mismatch(`RoundConfig.metricSlots is ${slots.kind} but this round's task has class-index targets (no extra metric slots)`);
    return;
  }
  if (slots === undefined) throw mismatch(`RoundConfig.metricSlots is absent but this round's task is ${task.kind} (${METRIC_SLOT_NAMES[task.kind].length} extra metric slots)`);
  if (slots.kind !== task.kind) throw mismatch(`RoundConfig.metricSlots.kind is ${slots.kind} but this round's task is ${task.kind}`);
  if (slots.outputs !== task.outputs) throw mismatch(`RoundConfig.metricSlots.outputs is ${slots.outputs} but this round's task has ${task.outputs}`);
}

/** Why a site changed or dropped its evaluation sums before masking (its own log only, never sent). */
export type MetricSumNote =
  | { readonly reason: 'EVAL_SUM_CLAMPED'; readonly slot: string; readonly bound: number }
  | { readonly reason: 'EVAL_SUM_NOT_FINITE' | 'EVAL_COUNT_INVALID' | 'EVAL_SUM_MISSING'; readonly slot: string };

/**
 * A site's extra metric sums, ready for quantizeUpdate: read from the evaluation's named sums, each
 * scaled sum clamped to this site's own bound (siteMetricBounds: the per-element bound times its
 * examples * T, so a site with a huge error moves the pooled sum by at most what that bound allows and
 * never wraps it), each count required to be a whole number in [0, examples * T]. A NaN sum, a missing
 * one or a bad count makes the site report no evaluation at all (`sums` undefined): one poisoned value
 * must not silently mix with the others. `notes` say what happened, for the site's log.
 */
export function siteMetricSums(
  slots: RoundMetricSlots | undefined,
  named: Readonly<Record<string, number>> | undefined,
  examples: number,
): { readonly sums: readonly number[] | undefined; readonly notes: readonly MetricSumNote[] } {
  if (slots === undefined) return { sums: [], notes: [] };
  const names = METRIC_SLOT_NAMES[slots.kind];
  const bounds = siteMetricBounds(slots, examples);
  const sums: number[] = [];
  const notes: MetricSumNote[] = [];
  for (const [index, slot] of names.entries()) {
    const value = named?.[slot];
    const [lower, upper] = bounds[index] as readonly [number, number];
    if (value === undefined) return { sums: undefined, notes: [...notes, { reason: 'EVAL_SUM_MISSING', slot }] };
    if (Number.isNaN(value)) return { sums: undefined, notes: [...notes, { reason: 'EVAL_SUM_NOT_FINITE', slot }] };
    if (slots.kind === 'multi_label') {
      // Float32 partial sums of 0/1 are exact far beyond any test split; anything else is not a count.
      const count = Math.round(value);
      if (!Number.isFinite(value) || Math.abs(value - count) > 1e-3 || count < lower || count > upper) {
        return { sums: undefined, notes: [...notes, { reason: 'EVAL_COUNT_INVALID', slot }] };
      }
      sums.push(count);
      continue;
    }
    if (value > upper || value < lower) {
      const bound = value > upper ? upper : lower;
      notes.push({ reason: 'EVAL_SUM_CLAMPED', slot, bound });
      sums.push(bound);
    } else {
      sums.push(value);
    }
  }
  return { sums, notes };
}
