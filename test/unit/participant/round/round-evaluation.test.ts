/**
 * Evaluation-only rounds (issue 11, item 7) against a coordinator that tries to read one site's metrics:
 * a site evaluates a model inside the secure sum (masked metric slots only, no training, no update, no
 * commit), records - on disk, before its Unmask answer leaves - that it reported the metrics of H, and
 * never reports them again: a second evaluation-only round on H (say with U differing by one site) and a
 * training round that asks for H's metrics are refused with MODEL_ALREADY_EVALUATED; a round that only
 * trains on H (purpose 'train') is taken and its metric slots are zero. Without this, two aggregates of
 * H's metrics over survivor sets that differ by one site give that site's exact loss, correct count and
 * number of test examples.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { createRoundConfig, type RoundConfig, type RoundPurpose } from '../../../../crypto/secagg/config.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { SessionRound, SiteRound, openSessionSites, smallUpdate, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

const FEDERATION_ID = 'fedgate-test';
let federation: TestFederation;
let allSites: string[];
let sites: Map<string, SessionSite>;
let remove: (() => Promise<void>) | undefined;
let counter = 0;

beforeAll(() => {
  federation = cachedFederation(4, 'evaluation-');
  allSites = federation.sites.map((site) => site.siteId);
});

afterAll(async () => {
  await remove?.();
});

afterEach(() => {
  vi.useRealTimers();
});

async function freshSites(): Promise<void> {
  await remove?.();
  ({ sites, remove } = await openSessionSites(federation));
}

const MODEL = sha256(utf8('final model H'));

/** A round on `modelHash` with members `participants` (complete graph) and the given purpose. */
function config(participants: readonly string[], purpose: RoundPurpose, modelHash = MODEL): RoundConfig {
  counter += 1;
  const base = testRoundConfig({ participants: [...participants], degree: participants.length - 1, counter });
  return createRoundConfig({
    ...base,
    modelHash,
    purpose,
    layout: purpose === 'evaluate' ? { ...base.layout, parameterSegments: [] } : base.layout,
  });
}

const site = (siteId: string): SessionSite => sites.get(siteId) as SessionSite;

/** Starts a lone site's RoundSession of `roundConfig` and returns it once the site has handled the RoundStart. */
async function startAlone(siteId: string, roundConfig: RoundConfig): Promise<SiteRound> {
  const round = new SiteRound(site(siteId), federation, roundConfig).start();
  await round.session.settled();
  return round;
}

describe('evaluation-only rounds', () => {
  it('sum only masked metrics: no training, no update, no commit; the site records an evaluation (not a contribution) before Unmask', async () => {
    await freshSites();
    const trained: string[] = [];
    const recordedAtUnmask = new Map<string, boolean>();
    const round = new SessionRound(federation, config(allSites, 'evaluate'), sites, (siteId) => ({
      train: async (roundConfig) => {
        trained.push(siteId);
        return smallUpdate(roundConfig);
      },
      evaluate: async () => ({ evalLossSum: 2.5, evalCorrect: 9, evalExamples: 12 }),
      onSend: (message) => {
        if (message.kind === 'stage' && message.message.stage === 'unmask') recordedAtUnmask.set(siteId, site(siteId).state.hasEvaluated(FEDERATION_ID, MODEL));
      },
      onUpload: (message) => {
        // d = 0: the masked vector holds the four metric slots (w, loss sum, correct, examples) and nothing else.
        expect(message.maskedVector.length).toBe(4);
        expect(site(siteId).state.hasEvaluated(FEDERATION_ID, MODEL)).toBe(false);
      },
    })).start();
    await round.runToEvaluated();

    expect(trained).toEqual([]);
    expect(round.aggregate?.maskedSurvivors).toEqual(allSites);
    expect(round.aggregate?.evalCorrect).toBe(4 * 9);
    expect(round.aggregate?.evalExamples).toBe(4 * 12);
    expect(round.aggregate?.evalLossSum).toBeCloseTo(4 * 2.5, 4);
    expect(round.aggregate?.weightSum).toBe(0);
    expect([...recordedAtUnmask.values()]).toEqual([true, true, true, true]);
    for (const siteRound of round.rounds.values()) {
      expect(siteRound.stages()).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys', 'consistency_check', 'unmask']);
      // The round is over for the site after its Unmask answer: nothing more is sent, its secrets are gone.
      expect(siteRound.session.state).toBe('finished');
      expect(siteRound.session.heldSecrets().every((secret) => secret.every((byte) => byte === 0))).toBe(true);
      expect(siteRound.site.state.hasContributed(FEDERATION_ID, MODEL)).toBe(false);
    }
  });

  it('refuses a second evaluation of H whose U differs by one site, before any key, even after a restart: the difference of the two sums never exists', async () => {
    await freshSites();
    const [first, second, third, fourth] = allSites as [string, string, string, string];
    const withoutFourth = new SessionRound(federation, config([first, second, third], 'evaluate'), sites).start();
    await withoutFourth.runToEvaluated();
    expect(withoutFourth.aggregate?.maskedSurvivors).toEqual([first, second, third]);

    await site(first).restart();
    // The coordinator now asks all four sites: only the fourth would still report, so its metrics would be
    // the difference. Every site that evaluated H refuses at RoundStart, without making a key.
    const withFourth = new SessionRound(federation, config(allSites, 'evaluate'), sites).start();
    await withFourth.settle();
    for (const siteId of [first, second, third]) {
      expect(withFourth.site(siteId).refusals()).toEqual([['MODEL_ALREADY_EVALUATED', refusalText('MODEL_ALREADY_EVALUATED')]]);
      expect(withFourth.site(siteId).stages()).toEqual([]);
    }
    expect(withFourth.site(fourth).stages()).toEqual(['advertise_keys']);
    // One site left: the round cannot even form its key list (and the fourth site's own policy would refuse it).
    expect(() => withFourth.server.closeAdvertiseKeys()).toThrow(SecAggError);
    withFourth.end();
    expect(site(fourth).state.hasEvaluated(FEDERATION_ID, MODEL)).toBe(false);

    // Swapping one member for another is refused the same way by every site that evaluated H.
    const swapped = new SessionRound(federation, config([second, third, fourth], 'evaluate'), sites).start();
    await swapped.settle();
    expect(swapped.site(second).refusals().map(([reason]) => reason)).toEqual(['MODEL_ALREADY_EVALUATED']);
    expect(swapped.site(third).refusals().map(([reason]) => reason)).toEqual(['MODEL_ALREADY_EVALUATED']);
    swapped.end();

    // Another model is evaluated as usual.
    const other = await startAlone(first, config(allSites, 'evaluate', sha256(utf8('model H+1'))));
    expect(other.stages()).toEqual(['advertise_keys']);
    other.session.stop('done');
  });

  it('after evaluating H: a training round asking for H metrics is refused; one that only trains is taken, with zero metric slots', async () => {
    await freshSites();
    const evaluation = new SessionRound(federation, config(allSites, 'evaluate'), sites).start();
    await evaluation.runToEvaluated();

    for (const siteId of allSites) {
      const asksForMetrics = await startAlone(siteId, config(allSites, 'train_and_evaluate'));
      expect(asksForMetrics.refusals().map(([reason]) => reason)).toEqual(['MODEL_ALREADY_EVALUATED']);
    }

    // Training without evaluation: the sites' trainers still return their evaluation, which never leaves.
    const trainOnly = new SessionRound(federation, config(allSites, 'train'), sites, () => ({ train: async (roundConfig) => smallUpdate(roundConfig) })).start();
    await trainOnly.runToCommitted();
    expect(trainOnly.aggregate?.maskedSurvivors).toEqual(allSites);
    expect(trainOnly.aggregate?.evalExamples).toBe(0);
    expect(trainOnly.aggregate?.evalCorrect).toBe(0);
    expect(trainOnly.aggregate?.evalLossSum).toBe(0);
    expect(trainOnly.aggregate?.weightSum).toBeGreaterThan(0);
    // That round is a contribution on H like any other.
    for (const siteId of allSites) expect(site(siteId).state.hasContributed(FEDERATION_ID, MODEL)).toBe(true);
  });

  it('a site that contributed to a round on H (which carried its metrics of H) refuses to evaluate H', async () => {
    await freshSites();
    const training = new SessionRound(federation, config(allSites, 'train_and_evaluate'), sites).start();
    await training.runToCommitted();
    // That round carried every site's metrics of H (smallUpdate: 10 examples, 7 correct, loss sum 5).
    expect([training.aggregate?.evalExamples, training.aggregate?.evalCorrect]).toEqual([4 * 10, 4 * 7]);
    const evaluation = await startAlone(allSites[0] as string, config(allSites, 'evaluate'));
    expect(evaluation.refusals().map(([reason]) => reason)).toEqual(['MODEL_ALREADY_EVALUATED']);
  });

  it("is over for the site once its Unmask answer left: the one-round slot is free, later stage messages are ignored, and the commit-stage deadline ends it without a refusal", async () => {
    await freshSites();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const roundConfig = config(allSites, 'evaluate');
    const evaluated: RoundConfig[] = [];
    const round = new SessionRound(federation, roundConfig, sites, () => ({
      deadlineGraceMs: 0,
      hooks: {
        onEvaluated: (done) => {
          evaluated.push(done);
        },
      },
    })).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.openConsistency();
    await round.openUnmask();
    await round.settle();
    expect(evaluated).toEqual(allSites.map(() => roundConfig));
    const commitRequest = { stage: 'commit_request', roundId: roundConfig.roundId, previousModelHash: MODEL, aggregateHash: MODEL, newModelHash: MODEL, optimizerStateHash: MODEL } as const;
    for (const [siteId, siteRound] of round.rounds) {
      expect([siteRound.session.evaluated, siteRound.session.state, site(siteId).guard.liveRound]).toEqual([true, 'running', undefined]);
      expect(siteRound.site.lines('evaluation-only round done for this site (no commit follows)')).toHaveLength(1);
      const sent = siteRound.sent.length;
      siteRound.session.handle(commitRequest);
      await siteRound.session.settled();
      expect(siteRound.sent).toHaveLength(sent);
      expect(siteRound.site.lines('a stage message after this site finished an evaluation-only round; ignoring it').at(-1)).toMatchObject({ stage: 'commit_request' });
    }
    vi.advanceTimersByTime(roundConfig.deadlines.unmaskMs);
    for (const siteRound of round.rounds.values()) {
      expect(siteRound.refusals()).toEqual([]);
      expect(siteRound.session.state).toBe('finished');
      expect(siteRound.site.lines('round ended for this site').at(-1)).toMatchObject({ reason: 'the evaluation-only round is over' });
      expect(siteRound.session.heldSecrets().every((secret) => secret.every((byte) => byte === 0))).toBe(true);
    }
    expect(round.server.closeUnmask().maskedSurvivors).toEqual(allSites);
  });

  it('an evaluation-only round that ends before Unmask revealed nothing and may be run again', async () => {
    await freshSites();
    const aborted = new SessionRound(federation, config(allSites, 'evaluate'), sites).start();
    await aborted.openKeyList();
    await aborted.openGraph();
    await aborted.openShareDelivery();
    await aborted.openConsistency();
    await aborted.settle();
    aborted.end();
    for (const siteId of allSites) expect(site(siteId).state.hasEvaluated(FEDERATION_ID, MODEL)).toBe(false);
    const retry = new SessionRound(federation, config(allSites, 'evaluate'), sites).start();
    await retry.runToEvaluated();
    expect(retry.aggregate?.maskedSurvivors).toEqual(allSites);
  });
});
