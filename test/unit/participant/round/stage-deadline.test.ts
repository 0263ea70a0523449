/**
 * The site's stage clock (stage-deadline.ts): each stage's wait is its RoundConfig deadline plus the
 * grace, measured from the message that opened it; the clock only moves forward, so a coordinator that
 * resends old messages cannot keep a round open.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StageDeadline, type DeadlinePassed } from '../../../../participant/round/stage-deadline.js';

const DEADLINES = { advertiseKeysMs: 100, shareKeysMs: 200, maskedInputMs: 1000, consistencyCheckMs: 300, unmaskMs: 400, commitMs: 500 };

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function clock(): { deadline: StageDeadline; passed: DeadlinePassed[] } {
  const passed: DeadlinePassed[] = [];
  return { deadline: new StageDeadline(DEADLINES, 50, (event) => passed.push(event)), passed };
}

describe('the stage clock', () => {
  it('gives each stage its own deadline plus the grace, from the message that opened it', () => {
    const { deadline, passed } = clock();
    deadline.opened('round_start');
    vi.advanceTimersByTime(149);
    deadline.opened('key_list');
    vi.advanceTimersByTime(149);
    deadline.opened('graph');
    vi.advanceTimersByTime(249);
    deadline.opened('share_delivery');
    vi.advanceTimersByTime(1049);
    expect(passed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(passed).toEqual([{ openedBy: 'share_delivery', waitedMs: 1050 }]);
  });

  it('does not restart for a message of the current or an earlier stage', () => {
    const { deadline, passed } = clock();
    deadline.opened('round_start');
    deadline.opened('consistency_request');
    for (let step = 0; step < 3; step++) {
      vi.advanceTimersByTime(100);
      deadline.opened('consistency_request');
      deadline.opened('key_list');
    }
    vi.advanceTimersByTime(49);
    expect(passed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(passed).toEqual([{ openedBy: 'consistency_request', waitedMs: 350 }]);
  });

  it('stops for good when cleared', () => {
    const { deadline, passed } = clock();
    deadline.opened('commit_request');
    deadline.clear();
    vi.advanceTimersByTime(10_000);
    expect(passed).toEqual([]);
  });
});
