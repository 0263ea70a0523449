/**
 * What a site tells the coordinator when it leaves a round: a reason code and the fixed text of that
 * code, nothing else (DESIGN.md "What a site checks for itself": refusals are reason codes, never text
 * with local values). The error itself - its message may hold local values such as "epoch 3, step 7:
 * loss is Infinity at index 12" or a file path - goes to the site's own log only.
 *
 * Codes that go out: the checks of the SecAgg+ client and the site's policy (SecAggError: each names
 * what was wrong with the coordinator's messages), the site's own codes (SITE_DEFENCE_REASONS: its
 * defences, and SITE_DATA_INVALID, which says only that the site's data failed its check) and a commit
 * the site could not recompute from what the coordinator broadcast. Anything else - training, data, disk,
 * a bug - is SITE_ERROR: a more precise code could describe the local data.
 */
import { SecAggError } from '../../crypto/secagg/errors.js';
import { SITE_DEFENCE_REASONS, refusalText } from '../../crypto/secagg/site-refusals.js';
import { FedgateError } from '../../platform/index.js';

export interface SiteRefusal {
  readonly reason: string;
  /** refusalText(reason): a fixed text per code. */
  readonly message: string;
}

/** FedgateError reasons of participant/ that may go out as they are: none describes the local data. */
const COORDINATOR_FAULT_REASONS: ReadonlySet<string> = new Set([...Object.values(SITE_DEFENCE_REASONS), 'COMMIT_RECOMPUTE_FAILED']);

export function refusalFor(error: unknown): SiteRefusal {
  const reason = publicReason(error);
  return { reason, message: refusalText(reason) };
}

function publicReason(error: unknown): string {
  if (error instanceof SecAggError) return error.reason;
  if (error instanceof FedgateError && COORDINATOR_FAULT_REASONS.has(error.reason)) return error.reason;
  return SITE_DEFENCE_REASONS.SITE_ERROR;
}
