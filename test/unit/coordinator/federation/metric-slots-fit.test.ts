/**
 * The start-up check that a task's evaluation counts fit the secure sum (metric-slots-fit.ts): with the
 * configured E_max and the smallest round, the correct count (and a multi-label task's E_max x T label
 * counts) must stay at most M = floor((2^31 - 1) / |U|); otherwise the coordinator says which key to lower.
 */
import { describe, expect, it } from 'vitest';
import { requireMetricSlotsFit } from '../../../../coordinator/federation/metric-slots-fit.js';
import { FedgateError } from '../../../../platform/index.js';
import { thrownBy } from '../../../support/thrown.js';

const M_FOR_2 = Math.floor(2_147_483_647 / 2);

describe('requireMetricSlotsFit', () => {
  it('accepts a classification task and a multi-label task whose counts fit the smallest round', () => {
    expect(() => requireMetricSlotsFit(undefined, 100_000, 2)).not.toThrow();
    expect(() => requireMetricSlotsFit({ kind: 'multi_label', outputs: 20 }, 100_000, 3)).not.toThrow();
    expect(() => requireMetricSlotsFit({ kind: 'multi_label', outputs: 2 }, Math.floor(M_FOR_2 / 2), 2)).not.toThrow();
  });

  it('refuses E_max x T label counts above M of the smallest round, naming the key and the largest value that fits', () => {
    const error = thrownBy(FedgateError, () => requireMetricSlotsFit({ kind: 'multi_label', outputs: 2 }, Math.floor(M_FOR_2 / 2) + 1, 2));
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.reason).toBe('METRIC_SLOTS_DO_NOT_FIT');
    expect(error.message).toContain('participants.minimum = 2');
    expect(error.message).toContain(`set secagg.max_eval_examples to at most ${Math.floor(M_FOR_2 / 2)}`);
  });

  it('refuses a correct count that cannot fit either, and a regression task is held to the same count bound', () => {
    const tooMany = Math.floor(2_147_483_647 / 5) + 1;
    expect(thrownBy(FedgateError, () => requireMetricSlotsFit(undefined, tooMany, 5)).message).toContain(`secagg.max_eval_examples ${tooMany} cannot be summed`);
    expect(thrownBy(FedgateError, () => requireMetricSlotsFit({ kind: 'regression', outputs: 3, maxAbsTarget: 1, maxAbsError: 1 }, tooMany, 5)).reason).toBe('METRIC_SLOTS_DO_NOT_FIT');
    expect(() => requireMetricSlotsFit({ kind: 'regression', outputs: 3, maxAbsTarget: 1, maxAbsError: 1 }, tooMany - 1, 5)).not.toThrow();
  });
});
