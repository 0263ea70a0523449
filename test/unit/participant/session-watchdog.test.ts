/**
 * SessionWatchdog (participant/daemon/session-watchdog.ts) on fake time: silence for the limit (three
 * heartbeat intervals in the daemon) gives the connection up, once; a heartbeat every interval keeps it
 * forever; the limit counts from the last message heard, not from when watching began.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionWatchdog } from '../../../participant/daemon/session-watchdog.js';

const INTERVAL_MS = 1000;
const LIMIT_MS = 3 * INTERVAL_MS;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/**
 * Runs the immediates queued at the current fake time. The watchdog judges in a setImmediate queued by
 * its timeout, and an immediate queued at the very end of an advance runs only with the next advance.
 */
function settle(): void {
  vi.advanceTimersByTime(1);
}

function watchdog(): { dog: SessionWatchdog; fired: number[] } {
  const fired: number[] = [];
  return { dog: new SessionWatchdog((silentMs) => fired.push(silentMs)), fired };
}

/** Silence that lasted at least the limit, judged within the millisecond `settle` adds. */
const AT_THE_LIMIT = [expect.toSatisfy((silentMs: number) => silentMs >= LIMIT_MS && silentMs <= LIMIT_MS + 1)];

describe('SessionWatchdog', () => {
  it('fires once when nothing is heard for three intervals, not before', () => {
    const { dog, fired } = watchdog();
    dog.watch(LIMIT_MS);
    vi.advanceTimersByTime(LIMIT_MS - 2);
    settle();
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    settle();
    expect(fired).toEqual(AT_THE_LIMIT);
    // It stopped itself: more silence does not fire again.
    vi.advanceTimersByTime(10 * LIMIT_MS);
    settle();
    expect(fired).toHaveLength(1);
  });

  it('never fires while a heartbeat arrives every interval (1000 intervals)', () => {
    const { dog, fired } = watchdog();
    dog.watch(LIMIT_MS);
    for (let beat = 0; beat < 1000; beat++) {
      vi.advanceTimersByTime(INTERVAL_MS);
      dog.heard();
    }
    settle();
    expect(fired).toEqual([]);
    // Still watching: silence after the last heartbeat is noticed.
    vi.advanceTimersByTime(LIMIT_MS);
    settle();
    expect(fired).toEqual(AT_THE_LIMIT);
  });

  it('never fires while heartbeats arrive just inside the limit', () => {
    const { dog, fired } = watchdog();
    dog.watch(LIMIT_MS);
    for (let beat = 0; beat < 100; beat++) {
      vi.advanceTimersByTime(LIMIT_MS - 2);
      settle();
      dog.heard();
    }
    expect(fired).toEqual([]);
    dog.stop();
  });

  it('counts the silence from the last heartbeat when the heartbeats stop', () => {
    const { dog, fired } = watchdog();
    dog.watch(LIMIT_MS);
    for (let beat = 0; beat < 20; beat++) {
      vi.advanceTimersByTime(INTERVAL_MS);
      dog.heard();
    }
    vi.advanceTimersByTime(LIMIT_MS - 2);
    settle();
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    settle();
    expect(fired).toEqual(AT_THE_LIMIT);
  });

  it('replaces the limit on watch (first the HelloReply wait, then three intervals)', () => {
    const { dog, fired } = watchdog();
    dog.watch(30 * INTERVAL_MS);
    vi.advanceTimersByTime(INTERVAL_MS);
    dog.watch(LIMIT_MS);
    vi.advanceTimersByTime(LIMIT_MS);
    settle();
    expect(fired).toEqual(AT_THE_LIMIT);
  });

  it('does not fire once stopped, nor for a limit of 0 (a coordinator that sends no heartbeats)', () => {
    const stopped = watchdog();
    stopped.dog.watch(LIMIT_MS);
    stopped.dog.stop();
    const unlimited = watchdog();
    unlimited.dog.watch(0);
    vi.advanceTimersByTime(100 * LIMIT_MS);
    settle();
    expect(stopped.fired).toEqual([]);
    expect(unlimited.fired).toEqual([]);
  });

  it('does not fire when stopped after its timer ran but before it judged (a heartbeat handled in between)', () => {
    const { dog, fired } = watchdog();
    dog.watch(LIMIT_MS);
    // The timer runs at the limit and queues its judgement behind pending I/O; the site stops first.
    vi.advanceTimersByTime(LIMIT_MS);
    dog.stop();
    settle();
    vi.advanceTimersByTime(10 * LIMIT_MS);
    expect(fired).toEqual([]);
  });
});

