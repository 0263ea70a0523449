/**
 * The vector a site uploads: [w * delta, w, eval loss sum, correct count, eval examples]. quantizeUpdate
 * is a site's last check on what leaves it, so each rule on the local result is pinned here: the slot
 * layout read back through the aggregate decoder, the weight rule, and a refusal for every value outside
 * its bounds or outside what the round's purpose lets the vector carry.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { RandomSource } from '../../../../crypto/quantize.js';
import { dequantizeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import { createRoundConfig, roundScale, vectorLength, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { quantizeUpdate, tailSegments, updateWeight, type LocalUpdate } from '../../../../crypto/secagg/update-vector.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';
import { dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { siteIds, testRoundConfig } from '../../../support/secagg-sim.js';

const config = testRoundConfig({ participants: siteIds(4), degree: 3, parameters: 6 });
const random = (): RandomSource => RandomSource.seeded(sha256(utf8('update-vector test')));
const update = (change: Partial<LocalUpdate> = {}): LocalUpdate => ({
  delta: Float64Array.of(0.5, -0.25, 0.125, 2, -3, 0),
  weight: 0.5,
  evalLossSum: 12.5,
  evalCorrect: 7,
  evalExamples: 9,
  ...change,
});

/** The vector of `local` under `round`, read back as the aggregate of that one site. */
function readBack(local: LocalUpdate, round: RoundConfig = config) {
  const out = new Uint32Array(vectorLength(round));
  quantizeUpdate(round, local, out, random());
  return { out, values: dequantizeAggregate(round, out) };
}

/** One quantum of the slot with `bound` at this round's scale M. */
const quantum = (bound: number): number => bound / roundScale(config);

describe('quantizeUpdate', () => {
  it('lays out w * delta (clipped to c), then w, the loss sum, the correct count and the example count', () => {
    const { values } = readBack(update());
    const expected = [0.25, -0.125, 0.0625, 1, -1, 0];
    for (const [index, value] of expected.entries()) expect(Math.abs((values.weightedDeltaSum[index] as number) - value)).toBeLessThanOrEqual(quantum(1));
    expect(Math.abs(values.weightSum - 0.5)).toBeLessThanOrEqual(quantum(1));
    expect(Math.abs(values.evalLossSum - 12.5)).toBeLessThanOrEqual(quantum(10 * 1000));
    expect(values.evalCorrect).toBe(7);
    expect(values.evalExamples).toBe(9);
    expect(tailSegments(config)).toEqual([
      { kind: 'scaled', length: 1, bound: 1 },
      { kind: 'scaled', length: 1, bound: 10_000 },
      { kind: 'count', length: 1, max: 1000 },
      { kind: 'count', length: 1, max: 1000 },
    ]);
  });

  it('clips w * delta, not delta: with w = 1/4 a delta of 3 gives 0.75 under c = 1', () => {
    const { values } = readBack(update({ delta: Float64Array.of(3, -3, 5, -5, 1, 0), weight: 0.25 }));
    expect(Math.abs((values.weightedDeltaSum[0] as number) - 0.75)).toBeLessThanOrEqual(quantum(1));
    expect(Math.abs((values.weightedDeltaSum[1] as number) + 0.75)).toBeLessThanOrEqual(quantum(1));
    expect(Math.abs((values.weightedDeltaSum[2] as number) - 1)).toBeLessThanOrEqual(quantum(1));
    expect(Math.abs((values.weightedDeltaSum[3] as number) + 1)).toBeLessThanOrEqual(quantum(1));
  });

  it('quantizes each parameter segment with its own bound', () => {
    const twoSegments = createRoundConfig({ ...config, layout: { ...config.layout, parameterSegments: [{ length: 3, bound: 0.1 }, { length: 3, bound: 10 }] } });
    const { values } = readBack(update({ delta: Float64Array.of(1, 1, 1, 8, 8, 8), weight: 1 }), twoSegments);
    expect([...values.weightedDeltaSum].map((value) => Math.round(value * 1000) / 1000)).toEqual([0.1, 0.1, 0.1, 8, 8, 8]);
  });

  it('sends zero parameter slots for a site with w = 0, checking its delta is still finite', () => {
    const { out } = readBack(update({ weight: 0, delta: Float64Array.of(9, -9, 9, -9, 9, -9) }));
    expect([...out.subarray(0, 6)]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(out[6]).toBe(0);
    const error = refusal(() => readBack(update({ weight: 0, delta: Float64Array.of(0, 0, 0, Number.NaN, 0, 0) })));
    expect(error.reason).toBe('INVALID_UPDATE');
    expect(error.message).toContain('update.delta[3] must be finite');
  });

  it('takes Float32Array deltas as well', () => {
    const { values } = readBack(update({ delta: Float32Array.of(0.5, -0.25, 0.125, 2, -3, 0) }));
    expect(Math.abs((values.weightedDeltaSum[0] as number) - 0.25)).toBeLessThanOrEqual(quantum(1));
  });

  it.each([
    ['a delta that is a plain array', { delta: [0, 0, 0, 0, 0, 0] }, 'Float32Array or Float64Array'],
    ['a delta one element short', { delta: new Float64Array(5) }, 'd = 6 elements'],
    ['a delta one element long', { delta: new Float64Array(7) }, 'd = 6 elements'],
    ['a weight above 1', { weight: 1.0000001 }, 'update.weight'],
    ['a negative weight', { weight: -0.1 }, 'update.weight'],
    ['a NaN weight', { weight: Number.NaN }, 'update.weight'],
    ['a weight given as text', { weight: '0.5' }, 'update.weight'],
    ['a negative loss sum', { evalLossSum: -1 }, 'update.evalLossSum'],
    ['an infinite loss sum', { evalLossSum: Infinity }, 'update.evalLossSum'],
    ['a loss sum given as text', { evalLossSum: '1' }, 'update.evalLossSum'],
    ['more evaluation examples than E_max', { evalExamples: 1001, evalCorrect: 0 }, 'update.evalExamples'],
    ['a negative example count', { evalExamples: -1, evalCorrect: 0 }, 'update.evalExamples'],
    ['a fractional example count', { evalExamples: 2.5, evalCorrect: 0 }, 'update.evalExamples'],
    ['more correct answers than examples', { evalCorrect: 10 }, 'update.evalCorrect'],
    ['a negative correct count', { evalCorrect: -1 }, 'update.evalCorrect'],
    ['a fractional correct count', { evalCorrect: 1.5 }, 'update.evalCorrect'],
  ] as const)('refuses %s', (_name, change, text) => {
    const error = refusal(() => readBack(update(change as unknown as Partial<LocalUpdate>)));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_UPDATE' });
    expect(error.message).toContain(text);
  });

  it('accepts the boundaries: w = 0 and 1, E_max examples all correct, a zero loss sum', () => {
    for (const change of [{ weight: 1 }, { weight: 0 }, { evalExamples: 1000, evalCorrect: 1000 }, { evalLossSum: 0, evalCorrect: 0, evalExamples: 0 }]) {
      expect(() => readBack(update(change))).not.toThrow();
    }
  });

  it('refuses an output vector of the wrong length or type', () => {
    for (const out of [new Uint32Array(vectorLength(config) - 1), new Uint32Array(vectorLength(config) + 1), new Int32Array(vectorLength(config))]) {
      const error = refusal(() => quantizeUpdate(config, update(), out as Uint32Array, random()));
      expect(error.reason).toBe('INVALID_UPDATE');
      expect(error.message).toContain(`6 + 4 = ${vectorLength(config)} elements`);
    }
  });

  it("lets a 'train' round carry no evaluation and an 'evaluate' round no update", () => {
    const train = createRoundConfig({ ...config, purpose: 'train' });
    for (const change of [{ evalLossSum: 0.5, evalCorrect: 0, evalExamples: 0 }, { evalLossSum: 0, evalCorrect: 1, evalExamples: 1 }, { evalLossSum: 0, evalCorrect: 0, evalExamples: 1 }]) {
      expect(refusal(() => readBack(update(change), train))).toMatchObject({ reason: 'INVALID_UPDATE', message: expect.stringContaining("purpose 'train' carries no evaluation") });
    }
    expect(() => readBack(update({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0 }), train)).not.toThrow();
    const evaluate = createRoundConfig({ ...config, purpose: 'evaluate', layout: { ...config.layout, parameterSegments: [] } });
    const metricsOnly = update({ delta: new Float64Array(0), weight: 0 });
    const { values } = readBack(metricsOnly, evaluate);
    expect([values.weightSum, values.evalCorrect, values.evalExamples]).toEqual([0, 7, 9]);
    expect(refusal(() => readBack({ ...metricsOnly, weight: 0.5 }, evaluate))).toMatchObject({ reason: 'INVALID_UPDATE', message: expect.stringContaining('weight must be 0, got 0.5') });
  });
});

describe('quantizeUpdate under distributed DP', () => {
  const dpConfig = dpRoundConfig({ participants: siteIds(4), degree: 3, parameters: 6 });
  const encode = (local: LocalUpdate): Uint32Array => {
    const out = new Uint32Array(vectorLength(dpConfig));
    quantizeUpdate(dpConfig, local, out, random());
    return out;
  };

  it('sends only its noise share, with w = 1, when its weight is 0: the delta does not enter the vector', () => {
    const zero = encode(update({ weight: 0, delta: new Float64Array(6) }));
    const ignored = encode(update({ weight: 0, delta: Float64Array.of(0.9, -0.9, 0.9, -0.9, 0.9, -0.9) }));
    expect(ignored).toEqual(zero);
    const used = encode(update({ weight: 0.5, delta: Float64Array.of(0.9, -0.9, 0.9, -0.9, 0.9, -0.9) }));
    expect(used.subarray(0, 8)).not.toEqual(zero.subarray(0, 8));
    expect(dequantizeAggregate(dpConfig, zero).weightSum).toBeCloseTo(1, 6);
  });

  it('still refuses a non-finite delta from a site whose weight is 0', () => {
    const error = refusal(() => encode(update({ weight: 0, delta: Float64Array.of(0, 0, Infinity, 0, 0, 0) })));
    expect(error).toMatchObject({ reason: 'INVALID_UPDATE', message: expect.stringContaining('update.delta[2] must be finite') });
  });
});

describe('updateWeight', () => {
  it('is min(examples, W) / W', () => {
    expect(updateWeight(0, 500)).toBe(0);
    expect(updateWeight(250, 500)).toBe(0.5);
    expect(updateWeight(500, 500)).toBe(1);
    expect(updateWeight(10_000, 500)).toBe(1);
    expect(updateWeight(3, 1)).toBe(1);
  });

  it.each([
    ['negative examples', -1, 500, 'trainingExamples'],
    ['fractional examples', 2.5, 500, 'trainingExamples'],
    ['a zero W', 10, 0, 'maxWeight'],
    ['a fractional W', 10, 2.5, 'maxWeight'],
    ['an unsafe W', 10, 2 ** 53, 'maxWeight'],
  ] as const)('refuses %s', (_name, examples, maxWeight, field) => {
    const error = refusal(() => updateWeight(examples, maxWeight));
    expect(error.reason).toBe('INVALID_UPDATE');
    expect(error.message).toContain(field);
  });
});
