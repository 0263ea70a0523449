/**
 * Whether a task's evaluation counts fit the secure sum with the configured limits, checked when the
 * federation starts: every count slot of a round (correct examples, and for a multi-label task the true
 * positives, false positives and false negatives over E_max examples x T labels) must stay at most
 * M = floor((2^31 - 1) / |U|), or RoundConfig validation refuses the round. With the smallest round
 * (participants.minimum sites) that is a fact of the configuration alone, so it is reported at start-up,
 * naming the keys, instead of as a round that can never be created.
 */
import { quantizationScale } from '../../crypto/quantize.js';
import type { RoundMetricSlots } from '../../crypto/secagg/metric-slots.js';
import { FedgateError } from '../../platform/index.js';

/** Throws FAILED_PRECONDITION (METRIC_SLOTS_DO_NOT_FIT) when even the smallest round's counts could wrap. */
export function requireMetricSlotsFit(slots: RoundMetricSlots | undefined, maxEvalExamples: number, minimumParticipants: number): void {
  const labels = slots?.kind === 'multi_label' ? slots.outputs : 1;
  const scale = quantizationScale(minimumParticipants);
  if (maxEvalExamples * labels <= scale) return;
  const largest = Math.floor(scale / labels);
  const what = labels === 1 ? `secagg.max_eval_examples ${maxEvalExamples}` : `secagg.max_eval_examples ${maxEvalExamples} x ${labels} labels = ${maxEvalExamples * labels} label counts per site`;
  throw new FedgateError(
    'FAILED_PRECONDITION',
    `${what} cannot be summed over a round of participants.minimum = ${minimumParticipants} sites without wrapping (at most ${scale} per site); set secagg.max_eval_examples to at most ${largest} in coordinator.yaml`,
    { reason: 'METRIC_SLOTS_DO_NOT_FIT' },
  );
}
