/**
 * Backoff (participant/daemon/backoff.ts): the reconnect delay keeps a site alive without hammering a
 * coordinator that is down. The ceiling doubles per attempt from the initial delay up to the maximum
 * (never past it, however many attempts: no overflow to Infinity), full jitter scales it by the random
 * draw, and a connection that succeeded starts over from the initial delay.
 */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../../participant/daemon/backoff.js';

/** The next `count` delays of `backoff`. */
function delays(backoff: Backoff, count: number): number[] {
  return Array.from({ length: count }, () => backoff.next());
}

describe('Backoff', () => {
  it('doubles the ceiling from the initial delay up to the maximum, and stays there', () => {
    expect(delays(new Backoff(100, 1000, () => 1), 7)).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('scales the ceiling by the random draw (full jitter), rounded to whole milliseconds', () => {
    expect(delays(new Backoff(100, 10_000, () => 0.5), 3)).toEqual([50, 100, 200]);
    expect(delays(new Backoff(100, 10_000, () => 0.333), 2)).toEqual([33, 67]);
    expect(delays(new Backoff(100, 10_000, () => 0), 3)).toEqual([0, 0, 0]);
  });

  it('starts over from the initial delay after reset (a connection that succeeded)', () => {
    const backoff = new Backoff(100, 10_000, () => 1);
    delays(backoff, 5);
    backoff.reset();
    expect(delays(backoff, 2)).toEqual([100, 200]);
  });

  it('stays at the maximum after thousands of attempts (the exponent is capped, never Infinity or NaN)', () => {
    const backoff = new Backoff(1, Number.MAX_VALUE, () => 1);
    const last = delays(backoff, 2000).at(-1);
    // The exponent stops at 30: 2^30 ms (12 days), finite, not 2^1999.
    expect(last).toBe(2 ** 30);
  });

  it('uses Math.random by default: every delay within [0, ceiling]', () => {
    const backoff = new Backoff(100, 400);
    const seen = delays(backoff, 50);
    expect(seen.slice(0, 3).every((delay, attempt) => delay >= 0 && delay <= 100 * 2 ** attempt)).toBe(true);
    expect(seen.every((delay) => Number.isInteger(delay) && delay >= 0 && delay <= 400)).toBe(true);
  });
});
