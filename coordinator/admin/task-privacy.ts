/**
 * The epsilon GetStatus reports for a task's record-level DP (admin.proto RecordLevelPrivacy): the public
 * parameters of the task (privacy.recordLevel, the model's parameter count) times the rounds committed,
 * through the same accountant a site charges a round with before it trains (crypto/dp dpSgdRoundRdp). A
 * site's own delta is its private choice, so the figure is read at the delta the operator asks for, 1e-5
 * by default.
 */
import { dpSgdRoundsEpsilon } from '../../crypto/dp/dp-sgd-round.js';
import type { RecordLevelDpSpec } from '../../model/task.js';
import type { RecordLevelPrivacyMessage } from '../../proto/admin-messages.js';
import { fedgateError } from '../../proto/errors.js';

/** The delta of GetStatus's epsilon when the request leaves privacy_delta at 0. */
export const DEFAULT_STATUS_DELTA = 1e-5;

/** What the coordinator knows of its task's DP: the public parameters and the model's size. */
export interface TaskPrivacy {
  readonly recordLevel: RecordLevelDpSpec;
  /** Parameters of the model the task's plan builds (what every site builds too). */
  readonly dimension: number;
}

/** The RecordLevelPrivacy of GetStatus; null for a task without record-level DP. */
export function recordLevelPrivacyMessage(privacy: TaskPrivacy | undefined, committedRounds: number, requestedDelta: number): RecordLevelPrivacyMessage | null {
  const delta = statusDelta(requestedDelta);
  if (privacy === undefined) return null;
  const params = { ...privacy.recordLevel, dimension: privacy.dimension };
  return {
    clipNorm: privacy.recordLevel.clipNorm,
    noiseMultiplier: privacy.recordLevel.noiseMultiplier,
    samplingRate: privacy.recordLevel.samplingRate,
    stepsPerRound: privacy.recordLevel.stepsPerRound,
    modelParameters: privacy.dimension,
    roundsCounted: committedRounds,
    delta,
    epsilonPerRound: dpSgdRoundsEpsilon(params, 1, delta),
    epsilonSpent: dpSgdRoundsEpsilon(params, committedRounds, delta),
  };
}

/** GetStatusRequest.privacy_delta checked: 0 is the default, anything else must lie in (0, 1). */
export function statusDelta(requested: number): number {
  if (requested === 0) return DEFAULT_STATUS_DELTA;
  if (typeof requested !== 'number' || !(requested > 0 && requested < 1)) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_PRIVACY_DELTA', `privacy_delta must be in (0, 1), e.g. 1e-5 (or 0 for that default); got ${String(requested)}`);
  }
  return requested;
}
