/**
 * A site's privacy budget against a coordinator that lies (participant/round/site-privacy.ts driven by
 * real RoundSessions and a real SecAggServer, as the daemon wires it: checkRound at RoundStart, the charge
 * right before training). Each site has its own budget file in its state directory.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { dpSgdRoundsEpsilon } from '../../../../crypto/dp/dp-sgd-round.js';
import { composeSteps, rdpToEpsilon } from '../../../../crypto/dp/rdp.js';
import { createRoundConfig, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { checkRoundDistributedDp, participantLevelRoundCurve } from '../../../../crypto/secagg/distributed-dp-round.js';
import type { RoundDistributedDp } from '../../../../crypto/secagg/dp-fields.js';
import { participantLevelOf } from '../../../../model/task.js';
import { withDistributedDp } from '../../../support/distributed-dp-round.js';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { PrivacyBudgetStore } from '../../../../participant/state/index.js';
import { SitePrivacy, type TaskPrivacyFacts } from '../../../../participant/round/site-privacy.js';
import { SessionRound, SiteRound, openSessionSites, smallUpdate, type SessionEnvironmentOptions, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, TEST_TASK_HASH, testPolicy, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

const RECORD_LEVEL = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.01, stepsPerRound: 100 };
const DIMENSION = 1000;
/** Two pinned DP tasks and one pinned task without DP. */
const TASK_A = TEST_TASK_HASH;
const TASK_B = sha256(utf8('fedgate test task B (DP)'));
const TASK_PLAIN = sha256(utf8('fedgate test task without DP'));
const TASK_PL = sha256(utf8('fedgate test task with participant-level DP'));
const PARTICIPANT_LEVEL = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 2, toleratedColluders: 1, ringBits: 32 };
const FACTS = new Map<string, TaskPrivacyFacts>([
  [toHex(TASK_A), { task: { privacy: { recordLevel: RECORD_LEVEL } }, dimension: DIMENSION, trainingExamples: 600 }],
  [toHex(TASK_B), { task: { privacy: { recordLevel: RECORD_LEVEL } }, dimension: DIMENSION, trainingExamples: 600 }],
  [toHex(TASK_PLAIN), { task: {}, dimension: DIMENSION, trainingExamples: 600 }],
  [toHex(TASK_PL), { task: { privacy: { participantLevel: PARTICIPANT_LEVEL } }, dimension: DIMENSION, trainingExamples: 600 }],
]);
const DELTA = 1e-5;
const epsilonOf = (rounds: number): number => dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: DIMENSION }, rounds, DELTA);

let federation: TestFederation;
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let siteIds: string[];

beforeAll(async () => {
  federation = cachedFederation(3, 'privacy-');
  siteIds = federation.sites.map((site) => site.siteId);
  ({ sites, remove } = await openSessionSites(federation));
});

afterAll(async () => {
  await remove();
});

/** Every round a test started, ended after it (a failed assertion must not leave a site's one round slot taken). */
const started: { stop(): void }[] = [];
afterEach(() => {
  for (const round of started.splice(0)) round.stop();
});

function tracked<T extends SessionRound | SiteRound>(round: T): T {
  started.push({ stop: () => (round instanceof SessionRound ? round.end() : round.session.stop('test over')) });
  return round;
}

/** One site's privacy, on a budget file of its own (a sub-directory per test, so tests do not share spending). */
class PrivateSite {
  trainings: string[] = [];
  constructor(
    readonly site: SessionSite,
    readonly privacy: SitePrivacy,
  ) {}

  static async open(site: SessionSite, name: string, budget: { epsilon: number; delta: number } | undefined, requireDp = true): Promise<PrivateSite> {
    const store = await PrivacyBudgetStore.open(join(site.directory, `privacy-${name}`));
    return new PrivateSite(site, new SitePrivacy({ ...(budget === undefined ? {} : { budget }), requireDp, datasetId: sha256(utf8(`dataset of ${site.siteId}`)) }, store, site.logger));
  }

  /** The session environment as participant-app.ts wires it. */
  environment(): SessionEnvironmentOptions {
    const facts = (config: RoundConfig): TaskPrivacyFacts => {
      const known = FACTS.get(toHex(config.taskHash));
      if (known === undefined) throw new Error('unknown task');
      return known;
    };
    return {
      policy: testPolicy({ pinnedTaskHashes: [TASK_A, TASK_B, TASK_PLAIN, TASK_PL] }),
      hooks: {
        checkRound: async (config) => {
          // As participant-app.ts: the round's distributed DP against the task first, then the budget.
          checkRoundDistributedDp(config, participantLevelOf(facts(config).task));
          this.privacy.checkRound(facts(config), config.purpose !== 'evaluate', config);
        },
      },
      train: async (config) => {
        await this.privacy.chargeRound(config.taskHash, config.roundId, facts(config), config);
        this.trainings.push(toHex(config.roundId));
        return smallUpdate(config);
      },
    };
  }
}

let counter = 100;
function config(overrides: Partial<RoundConfig> = {}): RoundConfig {
  counter += 1;
  return { ...testRoundConfig({ participants: siteIds, degree: 2, counter }), modelHash: sha256(utf8(`model ${counter}`)), ...overrides };
}

function evaluationConfig(): RoundConfig {
  const base = config();
  return { ...base, purpose: 'evaluate', layout: { ...base.layout, parameterSegments: [] } };
}

async function privateSites(name: string, budget: { epsilon: number; delta: number } | undefined, requireDp = true): Promise<Map<string, PrivateSite>> {
  const result = new Map<string, PrivateSite>();
  for (const id of siteIds) result.set(id, await PrivateSite.open(sites.get(id) as SessionSite, name, budget, requireDp));
  return result;
}

function only(map: Map<string, PrivateSite>, index = 0): PrivateSite {
  return map.get(siteIds[index] as string) as PrivateSite;
}

describe('a site enforces its privacy budget in rounds', () => {
  it('trains and charges each round before training, then refuses the round that would exceed the budget at RoundStart, with its code, charging nothing', async () => {
    const privacy = await privateSites('budget', { epsilon: 1.48, delta: DELTA });
    for (let round = 0; round < 2; round++) {
      const session = tracked(new SessionRound(federation, config(), sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
      await session.runToCommitted();
      expect(session.aggregate?.maskedSurvivors).toHaveLength(3);
    }
    const site = only(privacy);
    expect(site.trainings).toHaveLength(2);
    expect(site.privacy.epsilonSpent()).toBeCloseTo(epsilonOf(2), 10);

    const third = tracked(new SessionRound(federation, config(), sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
    await third.settle();
    for (const id of siteIds) {
      expect(third.site(id).refusals()).toEqual([['PRIVACY_BUDGET_EXCEEDED', refusalText('PRIVACY_BUDGET_EXCEEDED')]]);
      expect(third.site(id).stages()).toEqual([]);
    }
    third.end();
    expect(site.trainings).toHaveLength(2);
    expect(site.privacy.epsilonSpent()).toBeCloseTo(epsilonOf(2), 10);
    // The figures are in the site's own log, never in the refusal.
    const detail = site.site.lines('leaving the round').at(-1)?.['detail'];
    expect(detail).toMatch(/epsilon spent on this site's data 1\.44.*above the budget epsilon 1\.48/);
  });

  it('refuses a task without DP at RoundStart when it has a budget or require_dp (DP_REQUIRED); trains it otherwise', async () => {
    for (const [name, budget, requireDp] of [['plain-budget', { epsilon: 8, delta: DELTA }, true], ['plain-require', undefined, true]] as const) {
      const privacy = await privateSites(name, budget, requireDp);
      const round = tracked(new SiteRound(only(privacy).site, federation, config({ taskHash: TASK_PLAIN }), only(privacy).environment())).start();
      await round.session.settled();
      expect(round.refusals()).toEqual([['DP_REQUIRED', refusalText('DP_REQUIRED')]]);
      expect(round.stages()).toEqual([]);
      round.session.stop('done');
    }
    const lenient = await privateSites('plain-lenient', undefined, false);
    const session = tracked(new SessionRound(federation, config({ taskHash: TASK_PLAIN }), sites, (id) => (lenient.get(id) as PrivateSite).environment())).start();
    await session.runToCommitted();
    expect(only(lenient).trainings).toHaveLength(1);
    expect(only(lenient).privacy.epsilonSpent()).toBe(0);
  });

  it('a coordinator re-sending a trained round - the same round, or its id with another task hash under another federation id - gets no second training and no second charge', async () => {
    const privacy = await privateSites('replay', { epsilon: 100, delta: DELTA });
    const first = config();
    const session = tracked(new SessionRound(federation, first, sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
    await session.runToCommitted();
    const site = only(privacy);
    expect(site.trainings).toEqual([toHex(first.roundId)]);
    const charged = site.privacy.epsilonSpent();

    // The same RoundStart again: the round guard's persisted counter refuses it (ROUND_NOT_FRESH).
    const replay = tracked(new SiteRound(site.site, federation, first, site.environment())).start();
    await replay.session.settled();
    expect(replay.refusals().map(([reason]) => reason)).toEqual(['ROUND_NOT_FRESH']);

    // The same round id with another pinned DP task under a federation id this site never saw (its
    // round counters are per federation, so the guard lets it through): every site's budget refuses
    // it before training, after the share exchange.
    const relabelled = { ...first, taskHash: TASK_B, federationId: 'another-federation' };
    const again = tracked(new SessionRound(federation, relabelled, sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
    await again.openKeyList();
    await again.openGraph();
    await again.openShareDelivery();
    await again.settle();
    for (const id of siteIds) {
      expect(again.site(id).refusals()).toEqual([['ROUND_ALREADY_CHARGED', refusalText('ROUND_ALREADY_CHARGED')]]);
      expect(again.site(id).uploads).toEqual([]);
    }
    again.end();
    expect(site.trainings).toEqual([toHex(first.roundId)]);
    expect(site.privacy.epsilonSpent()).toBe(charged);
  });

  it('rounds sent to this site alone (fresh ids, fresh models, its peers never asked) are charged one by one until the budget refuses them: the total never exceeds it', async () => {
    const budget = { epsilon: 1.6, delta: DELTA };
    const privacy = await privateSites('alone', budget);
    const site = only(privacy);
    let refusedAt: number | undefined;
    for (let attempt = 0; attempt < 6 && refusedAt === undefined; attempt++) {
      // Only this site's budget is spent: its peers are fresh sites each time (another budget file).
      const peers = await privateSites(`alone-peers-${attempt}`, undefined, false);
      const session = tracked(new SessionRound(federation, config(), sites, (id) => (id === siteIds[0] ? site : (peers.get(id) as PrivateSite)).environment())).start();
      await session.settle();
      if (session.site(siteIds[0] as string).refusals().length > 0) {
        expect(session.site(siteIds[0] as string).refusals().map(([reason]) => reason)).toEqual(['PRIVACY_BUDGET_EXCEEDED']);
        refusedAt = attempt;
        session.end();
        break;
      }
      await session.openKeyList();
      await session.openGraph();
      await session.openShareDelivery();
      await session.settle();
      // The coordinator aborts once it has the masked input: the site has trained (and paid) all the same.
      session.end();
    }
    expect(refusedAt).toBe(3);
    expect(site.trainings).toHaveLength(3);
    expect(site.privacy.epsilonSpent()).toBeCloseTo(epsilonOf(3), 10);
    expect(site.privacy.epsilonSpent()).toBeLessThanOrEqual(budget.epsilon);
  });

  it('an evaluation-only round charges nothing (the held-out split is not trained on)', async () => {
    const privacy = await privateSites('evaluate', { epsilon: 8, delta: DELTA });
    const session = tracked(new SessionRound(federation, evaluationConfig(), sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
    await session.runToEvaluated();
    expect(session.aggregate?.maskedSurvivors).toHaveLength(3);
    expect(only(privacy).trainings).toEqual([]);
    expect(only(privacy).privacy.epsilonSpent()).toBe(0);
  });
});

describe('a site enforces its privacy budget in participant-level DP rounds', () => {
  const plConfig = (): RoundConfig => withDistributedDp(config({ taskHash: TASK_PL }), PARTICIPANT_LEVEL);

  it('charges each round its curve at t survivors before training, then refuses the round over budget at RoundStart: no key, no upload, no charge', async () => {
    const sample = plConfig();
    const plEpsilonOf = (rounds: number): number => rdpToEpsilon(composeSteps(participantLevelRoundCurve(sample, sample.reconstructionThreshold), rounds), DELTA).epsilon;
    const privacy = await privateSites('participant-level', { epsilon: (plEpsilonOf(2) + plEpsilonOf(3)) / 2, delta: DELTA });
    for (let round = 0; round < 2; round++) {
      const session = tracked(new SessionRound(federation, plConfig(), sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
      await session.runToCommitted();
      expect(session.aggregate?.maskedSurvivors).toHaveLength(3);
    }
    for (const site of privacy.values()) {
      expect(site.trainings).toHaveLength(2);
      expect(site.privacy.epsilonSpent()).toBeCloseTo(plEpsilonOf(2), 10);
    }
    const third = tracked(new SessionRound(federation, plConfig(), sites, (id) => (privacy.get(id) as PrivateSite).environment())).start();
    await third.settle();
    for (const id of siteIds) {
      expect(third.site(id).refusals()).toEqual([['PRIVACY_BUDGET_EXCEEDED', refusalText('PRIVACY_BUDGET_EXCEEDED')]]);
      expect(third.site(id).stages()).toEqual([]);
      expect(third.site(id).uploads).toEqual([]);
    }
    third.end();
    for (const site of privacy.values()) expect(site.privacy.epsilonSpent()).toBeCloseTo(plEpsilonOf(2), 10);
  });

  it('a RoundConfig with less noise than the task asks is refused at RoundStart (DP_PARAMETERS_MISMATCH) and charges nothing; the honest round then trains', async () => {
    const privacy = await privateSites('participant-level-lying', { epsilon: 100, delta: DELTA });
    const site = only(privacy);
    const honest = plConfig();
    const lying = createRoundConfig({ ...honest, distributedDp: { ...(honest.distributedDp as RoundDistributedDp), noiseMultiplier: 0.2 } });
    const round = tracked(new SiteRound(site.site, federation, lying, site.environment())).start();
    await round.session.settled();
    expect(round.refusals().map(([reason]) => reason)).toEqual(['DP_PARAMETERS_MISMATCH']);
    expect(round.stages()).toEqual([]);
    round.session.stop('done');
    expect(site.trainings).toEqual([]);
    expect(site.privacy.epsilonSpent()).toBe(0);
  });
});

