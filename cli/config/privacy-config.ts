/**
 * site.yaml `privacy:`: the record-level differential-privacy budget the site enforces on its own data
 * (participant/round/site-privacy.ts), whatever task the coordinator runs. With a budget the site refuses
 * every task with neither privacy.recordLevel nor privacy.participantLevel (a round trained without noise
 * spends unbounded epsilon; participant-level DP bounds each of the site's records too) and
 * every round whose accounting would take what it spent on its data above (epsilon, delta). Without one,
 * `require_dp: true` still refuses tasks without DP, and the site keeps count of what DP rounds spent.
 */
import { z } from 'zod';

const EPSILON_HINT = 'expected a finite number > 0: the most the site lets all rounds on its data spend together (1 to 8 are usual; smaller is more private)';
const DELTA_HINT = 'expected a number strictly between 0 and 1: the probability the epsilon guarantee may fail, well below 1 / (the number of training records), e.g. 1e-5';

export const privacySchema = z
  .strictObject({
    epsilon: z.number({ error: EPSILON_HINT }).refine((value) => Number.isFinite(value) && value > 0, { message: EPSILON_HINT }).optional(),
    delta: z.number({ error: DELTA_HINT }).refine((value) => value > 0 && value < 1, { message: DELTA_HINT }).optional(),
    /** Refuse every task with neither privacy.recordLevel nor privacy.participantLevel; implied (and only `true` accepted) with a budget. */
    require_dp: z.boolean().optional(),
    /**
     * The name the budget file keeps this site's spending under. Default: derived from the data source
     * (format, file paths, partition), so moving the files starts a new count: set this to keep it.
     */
    dataset_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected 1-63 letters, digits, ".", "_" or "-"').optional(),
  })
  .superRefine((privacy, context) => {
    const hasEpsilon = privacy.epsilon !== undefined;
    const hasDelta = privacy.delta !== undefined;
    if (hasEpsilon !== hasDelta) {
      context.addIssue({
        code: 'custom',
        path: [hasEpsilon ? 'delta' : 'epsilon'],
        message: `is required with ${hasEpsilon ? 'epsilon' : 'delta'}: the budget is the pair (epsilon, delta), e.g. {epsilon: 3, delta: 1e-5}`,
      });
    }
    if (hasEpsilon && hasDelta && privacy.require_dp === false) {
      context.addIssue({
        code: 'custom',
        path: ['require_dp'],
        message: 'cannot be false with a budget: a round trained without DP noise spends unbounded epsilon, so a site with a budget refuses every task with neither privacy.recordLevel nor privacy.participantLevel; remove require_dp or the budget',
      });
    }
    if (!hasEpsilon && !hasDelta && privacy.require_dp !== true) {
      context.addIssue({ code: 'custom', path: [], message: 'set a budget {epsilon, delta} and/or require_dp: true, or leave privacy out' });
    }
  });

export type PrivacyConfig = z.output<typeof privacySchema>;
