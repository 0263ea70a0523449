/**
 * Label values for reason codes. Every distinct label value is a new time series in Prometheus, so a
 * value that comes from outside (a coordinator's abort reason as a site hears it) must not be able to
 * create series without end: only upper-case reason codes (REASON_PATTERN) are kept, at most `limit`
 * distinct ones, and everything else is counted under OTHER.
 */
import { REASON_PATTERN } from './errors.js';

export const OTHER_LABEL = 'OTHER';

export class ReasonLabels {
  private readonly seen = new Set<string>();

  constructor(private readonly limit = 64) {}

  /** `reason` itself when it is a reason code and there is room for it, else OTHER. */
  of(reason: string | undefined): string {
    if (reason === undefined || !REASON_PATTERN.test(reason)) return OTHER_LABEL;
    if (this.seen.has(reason)) return reason;
    if (this.seen.size >= this.limit) return OTHER_LABEL;
    this.seen.add(reason);
    return reason;
  }
}
