/**
 * RoundConfig.metricSlots (crypto/secagg/metric-slots.ts): the evaluation sums beyond (loss sum, correct
 * count, examples) that a multi-label or regression task puts in the masked upload. Pinned here: the slot
 * layout and its bounds, the canonical encoding (a class-index config keeps its bytes), the structural
 * limits (counts that could wrap, bounds that overflow), the fixed-point read-back of one and of |U|
 * sites at the bound, the site's own bounding of its sums (clamp or drop, with a reason code), the
 * quantizer's refusals, the site's check against its task, and the figures the coordinator derives.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { RandomSource } from '../../../../crypto/quantize.js';
import { dequantizeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import { decodeRoundConfig, encodeRoundConfig, roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { createRoundConfig, roundScale, vectorLength, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { evaluationFigures, extraRoundMetrics } from '../../../../crypto/secagg/metric-figures.js';
import {
  METRIC_SLOT_NAMES,
  checkRoundMetricSlots,
  extraMetricSegments,
  siteMetricSums,
  type RoundMetricSlots,
} from '../../../../crypto/secagg/metric-slots.js';
import { quantizeUpdate, tailSegments, type LocalUpdate } from '../../../../crypto/secagg/update-vector.js';
import { evaluationOutputs } from '../../../../model/train/objective.js';
import { evaluationShapeOf, lossOf, parseTaskDocument } from '../../../../model/task.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';
import { dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { siteIds, testRoundConfig } from '../../../support/secagg-sim.js';

const base = testRoundConfig({ participants: siteIds(4), degree: 3, parameters: 6 });
const REGRESSION: RoundMetricSlots = { kind: 'regression', outputs: 2, maxAbsTarget: 10, maxAbsError: 5 };
const MULTI_LABEL: RoundMetricSlots = { kind: 'multi_label', outputs: 5 };
const withSlots = (metricSlots: RoundMetricSlots, change: Partial<RoundConfig> = {}): RoundConfig => createRoundConfig({ ...base, metricSlots, ...change });
const random = (label = 'metric slots'): RandomSource => RandomSource.seeded(sha256(utf8(label)));
const update = (change: Partial<LocalUpdate> = {}): LocalUpdate => ({
  delta: Float64Array.of(0.5, -0.25, 0.125, 0.5, -0.5, 0),
  weight: 0.5,
  evalLossSum: 12.5,
  evalCorrect: 0,
  evalExamples: 9,
  ...change,
});

function readBack(round: RoundConfig, local: LocalUpdate) {
  const out = new Uint32Array(vectorLength(round));
  quantizeUpdate(round, local, out, random());
  return { out, values: dequantizeAggregate(round, out) };
}

describe('the metric-slot layout', () => {
  it('adds 3 count slots for multi-label and 4 scaled slots for regression after the 4 every round has; none for class-index tasks', () => {
    expect(vectorLength(base)).toBe(6 + 4);
    expect(vectorLength(withSlots(MULTI_LABEL))).toBe(6 + 4 + 3);
    expect(vectorLength(withSlots(REGRESSION))).toBe(6 + 4 + 4);
    // E_max = 1000, T = 5: every label count is exact up to 5000.
    expect(tailSegments(withSlots(MULTI_LABEL)).slice(4)).toEqual(Array.from({ length: 3 }, () => ({ kind: 'count', length: 1, max: 5000 })));
    // E_max * T = 2000 elements: R_max^2, R_max, Y_max, Y_max^2 per element.
    expect(extraMetricSegments(REGRESSION, 1000)).toEqual([
      { kind: 'scaled', length: 1, bound: 25 * 2000 },
      { kind: 'scaled', length: 1, bound: 5 * 2000 },
      { kind: 'scaled', length: 1, bound: 10 * 2000 },
      { kind: 'scaled', length: 1, bound: 100 * 2000 },
    ]);
  });

  it('names its slots as the evaluation graph names its outputs', () => {
    for (const [loss, kind] of [[{ kind: 'binary_cross_entropy' }, 'multi_label'], [{ kind: 'mse' }, 'regression'], [{ kind: 'l1' }, 'regression'], [{ kind: 'huber', delta: 1 }, 'regression']] as const) {
      expect(evaluationOutputs(lossOf({ loss }))).toEqual(METRIC_SLOT_NAMES[kind]);
    }
    expect(evaluationOutputs(lossOf({ loss: 'cross_entropy' }))).toEqual([]);
  });
});

describe('the canonical encoding', () => {
  it('leaves a class-index config without the field, and round-trips each kind with every other trailing field', () => {
    expect(encodeRoundConfig(base)).toEqual(encodeRoundConfig(createRoundConfig({ ...base })));
    for (const slots of [MULTI_LABEL, REGRESSION]) {
      for (const purpose of ['train_and_evaluate', 'train', 'evaluate'] as const) {
        const layout = purpose === 'evaluate' ? { ...base.layout, parameterSegments: [] } : base.layout;
        const config = withSlots(slots, { purpose, layout });
        const bytes = encodeRoundConfig(config);
        expect(decodeRoundConfig(bytes)).toEqual(config);
        expect(encodeRoundConfig(decodeRoundConfig(bytes))).toEqual(bytes);
        // The slots are in H(RoundConfig): a site that signs it signs the layout.
        expect(roundConfigHash(config)).not.toEqual(roundConfigHash(createRoundConfig({ ...base, purpose, layout })));
      }
    }
  });

  it('refuses an unknown kind code and trailing bytes inside the field', () => {
    const bytes = encodeRoundConfig(withSlots(MULTI_LABEL));
    const label = utf8('fedgate/v1/metric-slots');
    const at = Buffer.from(bytes).lastIndexOf(Buffer.from(label)) + label.length;
    // enc(label, kind, outputs): the kind's 1-byte field follows the label after its 4-byte length.
    const badKind = Uint8Array.from(bytes);
    badKind[at + 4] = 9;
    expect(refusal(() => decodeRoundConfig(badKind))).toMatchObject({ reason: 'INVALID_ENCODING' });
    const regression = encodeRoundConfig(withSlots(REGRESSION));
    const regressionAt = Buffer.from(regression).lastIndexOf(Buffer.from(label)) + label.length;
    // A regression field read as multi-label leaves Y_max and R_max as trailing fields.
    const relabelled = Uint8Array.from(regression);
    relabelled[regressionAt + 4] = 1;
    expect(() => decodeRoundConfig(relabelled)).toThrow();
  });
});

describe('structural limits', () => {
  it.each([
    ['outputs 0', { kind: 'multi_label', outputs: 0 }],
    ['non-integer outputs', { kind: 'regression', outputs: 1.5, maxAbsTarget: 1, maxAbsError: 1 }],
    ['a zero target bound', { kind: 'regression', outputs: 1, maxAbsTarget: 0, maxAbsError: 1 }],
    ['a NaN error bound', { kind: 'regression', outputs: 1, maxAbsTarget: 1, maxAbsError: Number.NaN }],
    ['bounds whose square times E_max T overflows a double', { kind: 'regression', outputs: 1, maxAbsTarget: 1e200, maxAbsError: 1 }],
    ['an unknown kind', { kind: 'class', outputs: 1 }],
  ] as const)('refuses %s (INVALID_ROUND_CONFIG)', (_name, slots) => {
    expect(refusal(() => withSlots(slots as unknown as RoundMetricSlots))).toMatchObject({ reason: 'INVALID_ROUND_CONFIG' });
  });

  it('refuses label counts that could wrap: E_max * T above M', () => {
    const scale = roundScale(base);
    const layout = { ...base.layout, maxEvalExamples: 100_000 };
    const outputs = Math.floor(scale / 100_000) + 1;
    expect(refusal(() => withSlots({ kind: 'multi_label', outputs }, { layout }))).toMatchObject({ reason: 'INVALID_ROUND_CONFIG', message: expect.stringContaining('without wrapping') });
    expect(vectorLength(withSlots({ kind: 'multi_label', outputs: outputs - 1 }, { layout }))).toBe(6 + 4 + 3);
  });
});

describe('fixed-point read-back', () => {
  it('carries regression sums to within one quantum and label counts exactly', () => {
    const regression = withSlots(REGRESSION);
    const sums = [120.5, 30.25, -17.75, 404];
    const { values } = readBack(regression, update({ metricSums: sums }));
    const bounds = extraMetricSegments(REGRESSION, 1000).map((segment) => (segment.kind === 'scaled' ? segment.bound : 0));
    sums.forEach((sum, index) => expect(Math.abs((values.metricSums[index] as number) - sum)).toBeLessThanOrEqual((bounds[index] as number) / roundScale(regression)));
    expect(values.evalExamples).toBe(9);

    const multiLabel = withSlots(MULTI_LABEL);
    const counts = readBack(multiLabel, update({ evalCorrect: 4, metricSums: [11, 3, 7] })).values;
    expect([...counts.metricSums]).toEqual([11, 3, 7]);
    expect(counts.evalCorrect).toBe(4);
  });

  it('sends a sum beyond the round bound as the bound itself: |U| sites at +bound and one at -bound sum without wrapping', () => {
    const regression = withSlots(REGRESSION);
    const scale = roundScale(regression);
    const high = readBack(regression, update({ metricSums: [1e30, 1e30, 1e30, 1e30] })).out;
    const low = readBack(regression, update({ metricSums: [1e30, 1e30, -1e30, 1e30] })).out;
    const tail = (vector: Uint32Array): Int32Array => new Int32Array(vector.buffer, vector.byteOffset + 10 * 4, 4);
    expect([...tail(high)]).toEqual([scale, scale, scale, scale]);
    expect(tail(low)[2]).toBe(-scale);
    // Four sites at the bound: the int32 sum is 4M <= 2^31 - 1 and reads back as 4 bounds.
    const sum = new Uint32Array(vectorLength(regression));
    for (let site = 0; site < 4; site++) for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (high[i] as number)) >>> 0;
    const read = dequantizeAggregate(regression, sum);
    expect(read.metricSums[0]).toBeCloseTo(4 * 25 * 2000, 6);
    expect(read.metricSums[3]).toBeCloseTo(4 * 100 * 2000, 6);
  });

  it('under distributed DP the extra slots follow the D update words and w, quantised as usual (no DP noise)', () => {
    const dp = createRoundConfig({ ...dpRoundConfig({ participants: siteIds(4), degree: 3, parameters: 6 }), metricSlots: MULTI_LABEL });
    // d = 6 padded to D = 8, then w, the three slots every round has and the three label counts.
    expect(vectorLength(dp)).toBe(8 + 4 + 3);
    expect(decodeRoundConfig(encodeRoundConfig(dp))).toEqual(dp);
    const { values } = readBack(dp, update({ evalCorrect: 2, metricSums: [5, 4, 3] }));
    expect([...values.metricSums]).toEqual([5, 4, 3]);
    expect(values.evalCorrect).toBe(2);
    expect(values.evalExamples).toBe(9);
  });

  it('leaves the extra slots 0 when the update carries none', () => {
    const { values } = readBack(withSlots(REGRESSION), update());
    expect([...values.metricSums]).toEqual([0, 0, 0, 0]);
  });
});

describe('quantizeUpdate refuses extra sums that are not what the round allows', () => {
  const regression = withSlots(REGRESSION);
  it.each([
    ['NaN', { metricSums: [Number.NaN, 0, 0, 0] }],
    ['Infinity', { metricSums: [0, Number.POSITIVE_INFINITY, 0, 0] }],
    ['too few sums', { metricSums: [1, 2, 3] }],
    ['too many sums', { metricSums: [1, 2, 3, 4, 5] }],
    ['sums without any example evaluated', { evalExamples: 0, evalLossSum: 0, metricSums: [1, 0, 0, 0] }],
  ] as const)('%s (INVALID_UPDATE)', (_name, change) => {
    expect(refusal(() => readBack(regression, update(change as Partial<LocalUpdate>)))).toMatchObject({ reason: 'INVALID_UPDATE' });
  });

  it('refuses extra sums on a class-index round, and any in a train round', () => {
    expect(refusal(() => readBack(base, update({ metricSums: [1] })))).toMatchObject({ reason: 'INVALID_UPDATE' });
    const train = withSlots(REGRESSION, { purpose: 'train' });
    const zero = { evalLossSum: 0, evalCorrect: 0, evalExamples: 0 };
    expect(refusal(() => readBack(train, update({ ...zero, evalExamples: 3, metricSums: [0, 0, 1, 0] })))).toMatchObject({ reason: 'INVALID_UPDATE' });
    expect([...readBack(train, update({ ...zero, metricSums: [0, 0, 0, 0] })).values.metricSums]).toEqual([0, 0, 0, 0]);
  });

  it('an evaluation-only round carries them with no update', () => {
    const evaluate = withSlots(MULTI_LABEL, { purpose: 'evaluate', layout: { ...base.layout, parameterSegments: [] } });
    const { values } = readBack(evaluate, update({ delta: new Float64Array(0), weight: 0, evalCorrect: 2, metricSums: [8, 1, 2] }));
    expect(vectorLength(evaluate)).toBe(4 + 3);
    expect([...values.metricSums]).toEqual([8, 1, 2]);
  });
});

describe("a site's bounding of its sums (siteMetricSums)", () => {
  const named = (values: readonly number[]): Record<string, number> => Object.fromEntries(METRIC_SLOT_NAMES.regression.map((name, i) => [name, values[i] as number]));

  it('passes sums within its own bounds (per element bound times examples * T)', () => {
    // 3 examples, T = 2: 6 elements; bounds 150, 30, [-60, 60], 600.
    expect(siteMetricSums(REGRESSION, named([149, 29, -59, 599]), 3)).toEqual({ sums: [149, 29, -59, 599], notes: [] });
  });

  it('clamps a huge or infinite sum to its bound, with EVAL_SUM_CLAMPED naming the slot', () => {
    const result = siteMetricSums(REGRESSION, named([1e12, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 10]), 3);
    expect(result.sums).toEqual([150, 30, -60, 10]);
    expect(result.notes).toEqual([
      { reason: 'EVAL_SUM_CLAMPED', slot: 'squared_error_sum', bound: 150 },
      { reason: 'EVAL_SUM_CLAMPED', slot: 'absolute_error_sum', bound: 30 },
      { reason: 'EVAL_SUM_CLAMPED', slot: 'target_sum', bound: -60 },
    ]);
  });

  it('drops the whole evaluation for a NaN sum or a missing one', () => {
    expect(siteMetricSums(REGRESSION, named([1, Number.NaN, 1, 1]), 3)).toEqual({ sums: undefined, notes: [{ reason: 'EVAL_SUM_NOT_FINITE', slot: 'absolute_error_sum' }] });
    expect(siteMetricSums(REGRESSION, { squared_error_sum: 1 }, 3)).toEqual({ sums: undefined, notes: [{ reason: 'EVAL_SUM_MISSING', slot: 'absolute_error_sum' }] });
    expect(siteMetricSums(REGRESSION, undefined, 3).sums).toBeUndefined();
  });

  it('takes whole label counts in [0, examples * T] and drops the evaluation for anything else', () => {
    const counts = (values: readonly number[]): Record<string, number> => Object.fromEntries(METRIC_SLOT_NAMES.multi_label.map((name, i) => [name, values[i] as number]));
    expect(siteMetricSums(MULTI_LABEL, counts([3, 0, 15]), 3)).toEqual({ sums: [3, 0, 15], notes: [] });
    for (const bad of [[3.5, 0, 0], [16, 0, 0], [-1, 0, 0], [Number.POSITIVE_INFINITY, 0, 0]]) {
      expect(siteMetricSums(MULTI_LABEL, counts(bad), 3)).toEqual({ sums: undefined, notes: [{ reason: 'EVAL_COUNT_INVALID', slot: 'true_positives' }] });
    }
  });

  it('has nothing to bound for a class-index task', () => {
    expect(siteMetricSums(undefined, undefined, 3)).toEqual({ sums: [], notes: [] });
  });
});

describe("a site's check against its task (checkRoundMetricSlots)", () => {
  const regressionTask = { kind: 'regression', outputs: 2 } as const;
  it('accepts the layout its task implies', () => {
    expect(() => checkRoundMetricSlots(withSlots(REGRESSION), regressionTask)).not.toThrow();
    expect(() => checkRoundMetricSlots(withSlots(MULTI_LABEL), { kind: 'multi_label', outputs: 5 })).not.toThrow();
    expect(() => checkRoundMetricSlots(base, { kind: 'class', outputs: 10 })).not.toThrow();
  });

  it.each([
    ['slots dropped for a regression task', base, regressionTask],
    ['another kind', withSlots({ kind: 'multi_label', outputs: 2 }), regressionTask],
    ['another number of outputs', withSlots({ ...REGRESSION, outputs: 1 }), regressionTask],
    ['slots added to a class-index task', withSlots(MULTI_LABEL), { kind: 'class', outputs: 5 }],
  ] as const)('refuses %s: FAILED_PRECONDITION METRIC_SLOTS_MISMATCH', (_name, config, task) => {
    expect(refusal(() => checkRoundMetricSlots(config, task, 'site-1'))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'METRIC_SLOTS_MISMATCH', site: 'site-1' });
  });

  it("reads a task's shape from its loss and labels", () => {
    const task = (loss: unknown, labels: string[]) => parseTaskDocument({ formatVersion: 1, model: { kind: 'logreg', inputShape: [4], classes: labels.length }, loss, input: { shape: [4], dtype: 'float32' }, normalization: { mean: [0], std: [1] }, labels, optimizer: { kind: 'sgd', learningRate: 0.1 }, training: { epochs: 1, batchSize: 4, proximalMu: 0, seed: 1 } });
    expect(evaluationShapeOf(task({ kind: 'mse' }, ['y']))).toEqual({ kind: 'regression', outputs: 1 });
    expect(evaluationShapeOf(task({ kind: 'binary_cross_entropy' }, ['a', 'b', 'c']))).toEqual({ kind: 'multi_label', outputs: 3 });
    expect(evaluationShapeOf(task('cross_entropy', ['a', 'b']))).toEqual({ kind: 'class', outputs: 2 });
  });
});

describe('the figures the coordinator reports (evaluationFigures)', () => {
  const common = { participants: 3, survivors: 3, evalCorrect: 0, weightSum: 0 };

  it('regression: MSE, MAE, RMSE and R^2 over the pooled elements, as the ledger stores them (decimal strings too)', () => {
    // y = [1, 2, 3, 4], predictions [1, 2, 3, 6]: SSE 4, SAE 2, sum y 10, sum y^2 30, SST 30 - 100/4 = 5.
    const metrics = { ...common, evalLossSum: 4, evalExamples: 4, ...extraRoundMetrics({ kind: 'regression', outputs: 1, maxAbsTarget: 10, maxAbsError: 10 }, [4, 2, 10, 30]) };
    const figures = evaluationFigures(metrics);
    expect(figures).toMatchObject({ kind: 'regression', examples: 4, mse: 1, mae: 0.5, rmse: 1, accuracy: null });
    expect(figures.r2).toBeCloseTo(1 - 4 / 5, 12);
    expect(evaluationFigures(Object.fromEntries(Object.entries(metrics).map(([key, value]) => [key, String(value)])))).toEqual(figures);
    // Two outputs per example: n = examples * T.
    expect(evaluationFigures({ ...metrics, evalOutputs: 2, evalExamples: 2 })).toMatchObject({ mse: 1, mae: 0.5 });
    // No variance in the targets, or nothing evaluated: no R^2.
    expect(evaluationFigures({ ...metrics, evalTargetSquareSum: 25 }).r2).toBeNull();
    expect(evaluationFigures({ ...metrics, evalExamples: 0 })).toMatchObject({ mse: null, r2: null, loss: null });
  });

  it('multi-label: micro precision, recall and F1 from the summed counts, exact match as accuracy', () => {
    const metrics = { ...common, evalLossSum: 1, evalCorrect: 3, evalExamples: 10, ...extraRoundMetrics(MULTI_LABEL, [6, 2, 4]) };
    expect(evaluationFigures(metrics)).toMatchObject({ kind: 'multi_label', precision: 0.75, recall: 0.6, f1: 12 / 18, accuracy: 0.3 });
  });

  it('classification: accuracy only, from the three slots every round has', () => {
    expect(evaluationFigures({ ...common, evalLossSum: 5, evalCorrect: 8, evalExamples: 10 })).toMatchObject({ kind: 'classification', accuracy: 0.8, loss: 0.5, f1: null, r2: null });
  });
});
