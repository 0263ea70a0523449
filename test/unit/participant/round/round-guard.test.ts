/**
 * The site's one guard across rounds (participant/round/round-guard.ts) on its own: the one running-round
 * slot (only the round that holds it can free it) and the errors its admission check raises - code,
 * reason and the local detail that goes to the site's log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { RoundGuard } from '../../../../participant/round/round-guard.js';
import { SiteStateStore } from '../../../../participant/state/index.js';
import { testRoundConfig } from '../../../support/secagg-sim.js';

let directory: string;
let guard: RoundGuard;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-guard-'));
  guard = new RoundGuard(await SiteStateStore.open(directory));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function round(counter: number, model = 'model r'): RoundConfig {
  return { ...testRoundConfig({ participants: ['a', 'b', 'c'], degree: 2, counter }), modelHash: sha256(utf8(model)) };
}

describe('the running-round slot', () => {
  it('is held by one round id, and only that id frees it', () => {
    const [first, second, third] = [round(1), round(2), round(3)];
    expect(guard.claim(first.roundId)).toBe('claimed');
    expect(guard.liveRound).toBe(toHex(first.roundId));
    expect(guard.claim(first.roundId)).toBe('same_round_running');
    expect(guard.claim(second.roundId)).toBe('other_round_running');
    guard.release(second.roundId);
    expect(guard.claim(third.roundId)).toBe('other_round_running');
    guard.release(first.roundId);
    expect(guard.liveRound).toBeUndefined();
    expect(guard.claim(third.roundId)).toBe('claimed');
  });
});

describe('admission', () => {
  it('refuses a counter that is not above the highest accepted, as FAILED_PRECONDITION ROUND_NOT_FRESH naming both counters', async () => {
    await guard.admit(round(5));
    await expect(guard.admit(round(5, 'another model'))).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      reason: 'ROUND_NOT_FRESH',
      message: 'round counter 5 is not above 5, the highest this site accepted: a replayed or stale round',
    });
    expect(guard.state.highestRoundCounter('fedgate-test')).toBe(5n);
  });

  it('refuses a model this site contributed to, as FAILED_PRECONDITION MODEL_ALREADY_CONTRIBUTED naming the model', async () => {
    const first = round(1);
    await guard.admit(first);
    await guard.recordContribution(first);
    await expect(guard.admit(round(2))).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      reason: 'MODEL_ALREADY_CONTRIBUTED',
      message: `this site's input was already unmasked in an aggregate on model ${toHex(first.modelHash)}; it contributes once per model`,
    });
    // The refused round moved nothing: round 2 on a fresh model is admitted.
    await guard.admit(round(2, 'model r+1'));
    expect(guard.state.highestRoundCounter('fedgate-test')).toBe(2n);
  });
});
