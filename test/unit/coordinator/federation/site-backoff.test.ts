/**
 * Leaving failing sites out of selection (issue 11, item 2): a site that refused or failed N rounds in a
 * row is not selected for a pause that doubles with every further failure (up to a maximum), is tried
 * again when the pause ends, and a round it takes part in without failing clears its record.
 */
import { describe, expect, it } from 'vitest';
import { SiteBackoff, type SiteBackoffChange } from '../../../../coordinator/federation/site-backoff.js';
import { selectParticipants } from '../../../../coordinator/federation/selection.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

const SITES = ['site-1', 'site-2', 'site-3', 'site-4'];
const fail = (siteId: string, reason = 'SITE_DATA_INVALID'): Map<string, string> => new Map([[siteId, reason]]);

describe('SiteBackoff', () => {
  it('leaves a site out only after N failed rounds in a row, naming it, its reasons and the pause', () => {
    const time = clock();
    const backoff = new SiteBackoff({ afterFailures: 3, initialMs: 30_000, maxMs: 600_000 }, time.now);
    expect(backoff.recordRound(SITES, fail('site-2', 'SITE_ERROR'))).toEqual([]);
    expect(backoff.recordRound(SITES, fail('site-2', 'DISCONNECTED'))).toEqual([]);
    expect(backoff.selectable(SITES)).toEqual(SITES);
    const changes = backoff.recordRound(SITES, fail('site-2'));
    expect(changes).toEqual<SiteBackoffChange[]>([
      { kind: 'excluded', siteId: 'site-2', failures: 3, reasons: ['SITE_ERROR', 'DISCONNECTED', 'SITE_DATA_INVALID'], pauseMs: 30_000, retryAt: time.now() + 30_000 },
    ]);
    expect(backoff.isExcluded('site-2')).toBe(true);
    expect(backoff.selectable(SITES)).toEqual(['site-1', 'site-3', 'site-4']);
    expect(backoff.nextRetry(SITES)).toBe(time.now() + 30_000);
    expect(backoff.nextRetry(['site-1'])).toBeUndefined();
  });

  it('a round without failure in between restarts the count', () => {
    const backoff = new SiteBackoff({ afterFailures: 2, initialMs: 1000, maxMs: 8000 }, clock().now);
    expect(backoff.recordRound(SITES, fail('site-1'))).toEqual([]);
    expect(backoff.recordRound(SITES, new Map())).toEqual([]);
    expect(backoff.recordRound(SITES, fail('site-1'))).toEqual([]);
    expect(backoff.isExcluded('site-1')).toBe(false);
    expect(backoff.recordRound(SITES, fail('site-1'))[0]?.kind).toBe('excluded');
  });

  it('tries the site again when the pause ends, doubles the pause at each failure after that, up to the maximum', () => {
    const time = clock();
    const backoff = new SiteBackoff({ afterFailures: 2, initialMs: 1000, maxMs: 5000 }, time.now);
    backoff.recordRound(SITES, fail('site-3'));
    const pauses: number[] = [];
    const first = backoff.recordRound(SITES, fail('site-3'))[0];
    if (first?.kind === 'excluded') pauses.push(first.pauseMs);
    for (let attempt = 0; attempt < 4; attempt++) {
      time.advance(999);
      expect(backoff.selectable(SITES)).not.toContain('site-3');
      const retryAt = backoff.nextRetry(SITES) as number;
      time.advance(retryAt - time.now());
      // The pause is over: the site is selected again, and one more failure leaves it out at once.
      expect(backoff.selectable(SITES)).toContain('site-3');
      const change = backoff.recordRound(SITES, fail('site-3'))[0];
      expect(change?.kind).toBe('excluded');
      if (change?.kind === 'excluded') pauses.push(change.pauseMs);
    }
    expect(pauses).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('reports a left-out site that took part in a round again, and forgets its streak and its pauses', () => {
    const time = clock();
    const backoff = new SiteBackoff({ afterFailures: 1, initialMs: 1000, maxMs: 60_000 }, time.now);
    backoff.recordRound(SITES, fail('site-4'));
    time.advance(1000);
    backoff.recordRound(SITES, fail('site-4'));
    time.advance(2000);
    expect(backoff.recordRound(SITES, new Map())).toEqual([{ kind: 'recovered', siteId: 'site-4', failures: 2 }]);
    expect(backoff.recordRound(SITES, new Map())).toEqual([]);
    // Back to the first pause, not the third.
    const again = backoff.recordRound(SITES, fail('site-4'))[0];
    expect(again?.kind === 'excluded' && again.pauseMs).toBe(1000);
  });

  it('only counts the members of the round it is told about', () => {
    const backoff = new SiteBackoff({ afterFailures: 1, initialMs: 1000, maxMs: 1000 }, clock().now);
    expect(backoff.recordRound(['site-1', 'site-2'], fail('site-3'))).toEqual([]);
    expect(backoff.selectable(SITES)).toEqual(SITES);
  });

  it('with the left-out site removed, selection still needs participants.min of the others', () => {
    const backoff = new SiteBackoff({ afterFailures: 1, initialMs: 60_000, maxMs: 60_000 }, clock().now);
    backoff.recordRound(SITES, fail('site-2'));
    const input = { fraction: 1, samplingSeed: new Uint8Array(32), roundCounter: 7n };
    expect(selectParticipants({ ...input, eligible: backoff.selectable(SITES), minimum: 3 })).toEqual(['site-1', 'site-3', 'site-4']);
    expect(selectParticipants({ ...input, eligible: backoff.selectable(SITES), minimum: 4 })).toBeUndefined();
  });

  it('refuses settings that could never leave a site out or never let it back', () => {
    expect(() => new SiteBackoff({ afterFailures: 0, initialMs: 1000, maxMs: 1000 })).toThrow(/afterFailures/);
    expect(() => new SiteBackoff({ afterFailures: 1, initialMs: 0, maxMs: 1000 })).toThrow(/initialMs/);
    expect(() => new SiteBackoff({ afterFailures: 1, initialMs: 2000, maxMs: 1000 })).toThrow(/maxMs/);
  });
});
