/**
 * Which connected sites the coordinator leaves out of its next rounds. A site that refused or failed
 * `afterFailures` rounds in a row (its data turned bad, its device is gone, it drops out every time) is
 * no longer selected for a while, so one broken site cannot make every round abort: the others go on
 * committing whenever enough of them remain (participants.min still holds). After the pause the site is
 * tried again; if it fails that round too it is left out again for twice as long (up to `maxMs`), and a
 * round it takes part in without failing clears its record. Pure bookkeeping over an injected clock;
 * the federation loop does the logging.
 */

export interface SiteBackoffSettings {
  /** Consecutive failed rounds after which a site is left out (>= 1). */
  readonly afterFailures: number;
  /** The first pause, in ms. */
  readonly initialMs: number;
  /** The longest pause, in ms (the pause doubles with every exclusion in a row). */
  readonly maxMs: number;
}

/** What a round's outcome changed for one site. */
export type SiteBackoffChange =
  | {
      readonly kind: 'excluded';
      readonly siteId: string;
      /** Failed rounds in a row. */
      readonly failures: number;
      /** The reasons of those rounds, oldest first (codes only: refusal reasons, DISCONNECTED, NO_ANSWER). */
      readonly reasons: readonly string[];
      readonly pauseMs: number;
      readonly retryAt: number;
    }
  | {
      /** A site that had been left out took part in a round without failing. */
      readonly kind: 'recovered';
      readonly siteId: string;
      readonly failures: number;
    };

interface SiteRecord {
  failures: number;
  reasons: string[];
  /** Exclusions since the site last took part in a round without failing. */
  exclusions: number;
  excludedUntil: number;
}

/** Most reasons kept per site (a long streak keeps its newest ones). */
const KEPT_REASONS = 8;

export class SiteBackoff {
  private readonly sites = new Map<string, SiteRecord>();

  constructor(
    private readonly settings: SiteBackoffSettings,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isSafeInteger(settings.afterFailures) || settings.afterFailures < 1) throw new RangeError(`afterFailures must be a positive integer, got ${settings.afterFailures}`);
    if (!(settings.initialMs > 0) || !(settings.maxMs >= settings.initialMs)) {
      throw new RangeError(`expected 0 < initialMs <= maxMs, got initialMs ${settings.initialMs} and maxMs ${settings.maxMs}`);
    }
  }

  /** Whether `siteId` is being left out right now. */
  isExcluded(siteId: string): boolean {
    const record = this.sites.get(siteId);
    return record !== undefined && record.excludedUntil > this.now();
  }

  /** `siteIds` without the sites left out right now (order kept). */
  selectable(siteIds: readonly string[]): string[] {
    return siteIds.filter((siteId) => !this.isExcluded(siteId));
  }

  /** When the earliest pause of the sites in `siteIds` ends, if any of them is left out. */
  nextRetry(siteIds: readonly string[]): number | undefined {
    const ends = siteIds.flatMap((siteId) => (this.isExcluded(siteId) ? [(this.sites.get(siteId) as SiteRecord).excludedUntil] : []));
    return ends.length === 0 ? undefined : Math.min(...ends);
  }

  /**
   * Records how one round went for each of its members: `failures` maps the members that failed to why.
   * Returns what changed (sites newly left out, sites back after a pause) for the caller to log.
   */
  recordRound(participants: readonly string[], failures: ReadonlyMap<string, string>): SiteBackoffChange[] {
    const changes: SiteBackoffChange[] = [];
    for (const siteId of participants) {
      const reason = failures.get(siteId);
      const change = reason === undefined ? this.succeeded(siteId) : this.failed(siteId, reason);
      if (change !== undefined) changes.push(change);
    }
    return changes;
  }

  private succeeded(siteId: string): SiteBackoffChange | undefined {
    const record = this.sites.get(siteId);
    if (record === undefined) return undefined;
    this.sites.delete(siteId);
    return record.exclusions > 0 ? { kind: 'recovered', siteId, failures: record.failures } : undefined;
  }

  private failed(siteId: string, reason: string): SiteBackoffChange | undefined {
    let record = this.sites.get(siteId);
    if (record === undefined) {
      record = { failures: 0, reasons: [], exclusions: 0, excludedUntil: 0 };
      this.sites.set(siteId, record);
    }
    record.failures += 1;
    record.reasons.push(reason);
    if (record.reasons.length > KEPT_REASONS) record.reasons.shift();
    // Left out once the streak reaches the threshold, and again at every failure after a pause.
    if (record.failures < this.settings.afterFailures) return undefined;
    record.exclusions += 1;
    const pauseMs = Math.min(this.settings.maxMs, this.settings.initialMs * 2 ** Math.min(record.exclusions - 1, 40));
    record.excludedUntil = this.now() + pauseMs;
    return { kind: 'excluded', siteId, failures: record.failures, reasons: [...record.reasons], pauseMs, retryAt: record.excludedUntil };
  }
}
