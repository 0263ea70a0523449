/**
 * What the coordinator reports from the unmasked metric sums of a round (docs/protocol.md
 * "Quantisation"): the summed slots it records (RoundMetrics, in the ledger and state/evaluations.json)
 * and the figures derived from them over the pooled test sets of the survivors - accuracy for class-index
 * tasks; micro precision, recall, F1 and exact-match accuracy for multi-label tasks; MSE, MAE, RMSE and
 * R^2 for regression. One function for the coordinator's log, its Admin API and its Prometheus metrics,
 * so they never disagree.
 */
import type { RoundMetrics } from './commit-record-codec.js';
import type { RoundMetricSlots } from './metric-slots.js';

/** RoundMetrics keys of the extra metric slots, in slot order (metric-slots.ts METRIC_SLOT_NAMES). */
export const EXTRA_METRIC_KEYS = Object.freeze({
  multi_label: Object.freeze(['evalTruePositives', 'evalFalsePositives', 'evalFalseNegatives'] as const),
  regression: Object.freeze(['evalSquaredErrorSum', 'evalAbsoluteErrorSum', 'evalTargetSum', 'evalTargetSquareSum'] as const),
});

export type ExtraMetricKey = (typeof EXTRA_METRIC_KEYS)[keyof typeof EXTRA_METRIC_KEYS][number];

/** Every optional RoundMetrics key (evalOutputs and the extra slots), for readers of stored metrics. */
export const OPTIONAL_METRIC_KEYS: readonly (ExtraMetricKey | 'evalOutputs')[] = Object.freeze(['evalOutputs', ...EXTRA_METRIC_KEYS.multi_label, ...EXTRA_METRIC_KEYS.regression]);

/** The RoundMetrics fields of the extra metric slots: T and each summed slot by name; {} without them. */
export function extraRoundMetrics(slots: RoundMetricSlots | undefined, metricSums: ArrayLike<number>): Partial<RoundMetrics> {
  if (slots === undefined) return {};
  const keys = EXTRA_METRIC_KEYS[slots.kind];
  const out: Record<string, number> = { evalOutputs: slots.outputs };
  keys.forEach((key, index) => {
    out[key] = metricSums[index] ?? 0;
  });
  return out as Partial<RoundMetrics>;
}

export type EvaluationKind = 'classification' | 'multi_label' | 'regression';

/** Figures over the pooled test sets; a figure with no examples (or no variance, for R^2) is null. */
export interface EvaluationFigures {
  readonly kind: EvaluationKind;
  readonly examples: number;
  /** Mean loss per example. */
  readonly loss: number | null;
  /** Classification: correct / examples; multi-label: exact-match accuracy; regression: null. */
  readonly accuracy: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
  readonly mse: number | null;
  readonly mae: number | null;
  readonly rmse: number | null;
  readonly r2: number | null;
}

type MetricSource = Readonly<Record<string, string | number | undefined>>;

/**
 * The figures of `metrics` (numbers, or the decimal strings the ledger stores). Regression over the
 * n = examples * T pooled target elements: MSE = SSE / n, MAE = SAE / n, RMSE = sqrt(MSE),
 * R^2 = 1 - SSE / SST with SST = sum y^2 - (sum y)^2 / n (null when SST <= 0). Multi-label micro-averaged
 * over every (example, label): precision = TP / (TP + FP), recall = TP / (TP + FN),
 * F1 = 2 TP / (2 TP + FP + FN).
 */
export function evaluationFigures(source: MetricSource | RoundMetrics): EvaluationFigures {
  const metrics = source as MetricSource;
  const value = (key: string): number => {
    const number = Number(metrics[key] ?? 0);
    return Number.isFinite(number) ? number : 0;
  };
  const has = (key: string): boolean => metrics[key] !== undefined;
  const examples = value('evalExamples');
  const ratio = (numerator: number, denominator: number): number | null => (denominator > 0 ? numerator / denominator : null);
  const base = { examples, loss: ratio(value('evalLossSum'), examples), precision: null, recall: null, f1: null, mse: null, mae: null, rmse: null, r2: null };
  if (has('evalSquaredErrorSum')) {
    const elements = examples * Math.max(1, value('evalOutputs'));
    const mse = examples > 0 ? value('evalSquaredErrorSum') / elements : null;
    const targetSum = value('evalTargetSum');
    const sst = value('evalTargetSquareSum') - (elements > 0 ? (targetSum * targetSum) / elements : 0);
    return {
      ...base,
      kind: 'regression',
      accuracy: null,
      mse,
      mae: examples > 0 ? value('evalAbsoluteErrorSum') / elements : null,
      rmse: mse === null ? null : Math.sqrt(Math.max(0, mse)),
      r2: examples > 0 && sst > 0 ? 1 - value('evalSquaredErrorSum') / sst : null,
    };
  }
  if (has('evalTruePositives')) {
    const tp = value('evalTruePositives');
    const fp = value('evalFalsePositives');
    const fn = value('evalFalseNegatives');
    return {
      ...base,
      kind: 'multi_label',
      accuracy: ratio(value('evalCorrect'), examples),
      precision: examples > 0 ? ratio(tp, tp + fp) : null,
      recall: examples > 0 ? ratio(tp, tp + fn) : null,
      f1: examples > 0 ? ratio(2 * tp, 2 * tp + fp + fn) : null,
    };
  }
  return { ...base, kind: 'classification', accuracy: ratio(value('evalCorrect'), examples) };
}
