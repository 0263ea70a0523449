/**
 * A site refuses replayed, stale and concurrent rounds itself (round-guard.ts; issue: "Replay"): the
 * round counter is persisted before the site's advert leaves, checked again after a restart from the
 * same state_dir, and a second round is refused while one runs - whatever id the coordinator uses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { SessionRound, SiteRound, openSessionSites, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, testPolicy, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

const FEDERATION_ID = 'fedgate-test';
let federation: TestFederation;
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let siteIds: string[];

beforeAll(async () => {
  federation = cachedFederation(3, 'fresh-');
  siteIds = federation.sites.map((site) => site.siteId);
  ({ sites, remove } = await openSessionSites(federation));
});

afterAll(async () => {
  await remove();
});

function site(index: number): SessionSite {
  return sites.get(siteIds[index] as string) as SessionSite;
}

function config(counter: number, overrides: Partial<RoundConfig> = {}): RoundConfig {
  return { ...testRoundConfig({ participants: siteIds, degree: 2, counter }), ...overrides };
}

async function startAlone(who: SessionSite, roundConfig: RoundConfig, policy = testPolicy()): Promise<SiteRound> {
  const round = new SiteRound(who, federation, roundConfig, { policy }).start();
  await round.session.settled();
  return round;
}

describe('round freshness', () => {
  it('persists the counter before the advert leaves, then refuses the same RoundStart, an older one, and both again after a restart', async () => {
    const who = site(0);
    let persistedWhenAdvertised: bigint | undefined;
    const first = config(5);
    const round = new SiteRound(who, federation, first, {
      onSend: (message) => {
        if (message.kind === 'stage' && message.message.stage === 'advertise_keys') persistedWhenAdvertised = who.state.highestRoundCounter(FEDERATION_ID);
      },
    }).start();
    await round.session.settled();
    expect(round.stages()).toEqual(['advertise_keys']);
    expect(persistedWhenAdvertised).toBe(5n);
    round.session.stop('the coordinator aborted the round');

    // The very same RoundStart (same id, same bytes) once the first round is over: a replay.
    const replay = await startAlone(who, first);
    expect(replay.refusals()).toEqual([['ROUND_NOT_FRESH', refusalText('ROUND_NOT_FRESH')]]);
    expect(replay.stages()).toEqual([]);
    // A fresh id with an older counter.
    expect((await startAlone(who, config(4))).refusals().map(([reason]) => reason)).toEqual(['ROUND_NOT_FRESH']);

    // A restart: the store reopened from the same state_dir, nothing kept in memory.
    await who.restart();
    expect(who.state.highestRoundCounter(FEDERATION_ID)).toBe(5n);
    const afterRestart = await startAlone(who, first);
    expect(afterRestart.refusals().map(([reason]) => reason)).toEqual(['ROUND_NOT_FRESH']);
    expect(afterRestart.stages()).toEqual([]);
    const next = await startAlone(who, config(6));
    expect(next.stages()).toEqual(['advertise_keys']);
    next.session.stop('done');
  });

  it('moves its counter only for a round it accepts: a round its policy refuses leaves it as it was', async () => {
    const who = site(1);
    const refused = await startAlone(who, config(9, { taskHash: sha256(utf8('a task this site never pinned')) }));
    // A refusal carries the code and the code's fixed text only: no task hash, no count of pinned tasks.
    expect(refused.refusals()).toEqual([['TASK_NOT_PINNED', refusalText('TASK_NOT_PINNED')]]);
    expect(who.state.highestRoundCounter(FEDERATION_ID)).toBeUndefined();
    expect(who.lines('leaving the round')[0]?.['detail']).toContain('is not among the 1 task hashes this site pins');
    // The same counter in a round the site accepts is still fresh.
    const accepted = await startAlone(who, config(9));
    expect(accepted.stages()).toEqual(['advertise_keys']);
    accepted.session.stop('done');
  });

  it('takes part in one round at a time: a second RoundStart is refused and the running round goes on untouched', async () => {
    const who = site(2);
    const running = await startAlone(who, config(20));
    expect(running.stages()).toEqual(['advertise_keys']);
    const secretsBefore = running.session.heldSecrets().map((buffer) => Buffer.from(buffer).toString('hex'));

    const other = await startAlone(who, config(21));
    expect(other.refusals()).toEqual([['ROUND_CONCURRENT', refusalText('ROUND_CONCURRENT')]]);
    expect(other.stages()).toEqual([]);
    // The refused round moved no counter.
    expect(who.state.highestRoundCounter(FEDERATION_ID)).toBe(20n);

    // The running round's id again: nothing is sent (a refusal would read as leaving the running round).
    const sameId = await startAlone(who, running.config);
    expect(sameId.sent).toEqual([]);
    expect(who.lines('a RoundStart repeats the id of the round this site is running; ignoring it')).toHaveLength(1);

    // The running round still holds its keys, unchanged, and still runs.
    expect(running.session.state).toBe('running');
    expect(running.session.heldSecrets().map((buffer) => Buffer.from(buffer).toString('hex'))).toEqual(secretsBefore);
    expect(who.guard.liveRound).toBe(Buffer.from(running.config.roundId).toString('hex'));

    running.session.stop('the coordinator aborted the round');
    expect(who.guard.liveRound).toBeUndefined();
    const after = await startAlone(who, config(22));
    expect(after.stages()).toEqual(['advertise_keys']);
    after.session.stop('done');
  });

  it('the RoundStart that follows RoundCommitted at once is not refused as concurrent', async () => {
    const round = new SessionRound(federation, config(30, { modelHash: sha256(utf8('model 30')) }), sites).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.openConsistency();
    await round.openUnmask();
    await round.openCommit();
    // The coordinator announces the commit and starts the next round in the same breath, as a
    // daemon's stream delivers them: no await in between, while the commit step may still be queued.
    const next: SiteRound[] = [];
    for (const siteRound of round.rounds.values()) {
      siteRound.session.committed(sha256(utf8('fedgate test model r+1')));
      next.push(new SiteRound(siteRound.site, federation, config(31, { modelHash: sha256(utf8('model 31')) })).start());
    }
    await round.settle();
    for (const siteRound of next) {
      await siteRound.session.settled();
      expect(siteRound.refusals()).toEqual([]);
      expect(siteRound.stages()).toEqual(['advertise_keys']);
      siteRound.session.stop('done');
    }
  });
});
