/**
 * A real federation (coordinator on 127.0.0.1:0 with mutual TLS, three participant daemons) training a
 * task with participant-level DP only: each site with a budget accepts it (it bounds each of the site's
 * records too), charges each round's curve - participantLevelRoundCurve of the RoundConfig it checked, at
 * t survivors - before it trains, the Admin API reports the same figure from the ledger's RoundConfigs,
 * and a site whose budget would be exceeded refuses the next round with PRIVACY_BUDGET_EXCEEDED before
 * it uploads anything, while the others go on without it.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSteps, rdpToEpsilon } from '../../crypto/dp/rdp.js';
import { participantLevelRoundCurve } from '../../crypto/secagg/distributed-dp-round.js';
import { parseTaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import type { RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SitePrivacy } from '../../participant/round/site-privacy.js';
import type { GetStatusResponse } from '../../proto/admin-messages.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';
import { openSitePrivacies, spyOnSiteMessages } from '../support/site-privacy-federation.js';
import { dpRoundConfig } from '../support/distributed-dp-round.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import { siteIds } from '../support/secagg-sim.js';

const PARTICIPANT_LEVEL = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 2, toleratedColluders: 1, ringBits: 32 };
const PL_TASK = pinTask(parseTaskDocument({ ...DIGITS_MLP_TASK, model: { kind: 'logreg', inputShape: [64], classes: 10 }, initialModel: undefined, privacy: { participantLevel: PARTICIPANT_LEVEL } }));
/** Logistic regression on 64 features, 10 classes. */
const PARAMETERS = 64 * 10 + 10;
const DELTA = 1e-5;
/** A round of the three sites' shape, to size the budgets (a round's curve depends on |U|, t and d alone). */
const SHAPE = dpRoundConfig({ participants: siteIds(3), degree: 2, parameters: PARAMETERS }, PARTICIPANT_LEVEL);
const epsilonOf = (rounds: number): number => rdpToEpsilon(composeSteps(participantLevelRoundCurve(SHAPE), rounds), DELTA).epsilon;
/** Site 1 can afford two rounds but not three; the others many. */
const TIGHT = { epsilon: (epsilonOf(2) + epsilonOf(3)) / 2, delta: DELTA };
const LOOSE = { epsilon: 100, delta: DELTA };

let h: AdminFederation;
const privacy: SitePrivacy[] = [];
const refusals: { siteId: string; reason: string }[] = [];
/** Sites that sent any stage message (an advert, shares, ...) to the third coordinator. */
const stagesAfterTwo: string[] = [];
let twoDone = false;
let afterTwo: GetStatusResponse;
let afterThree: GetStatusResponse;
let spentAfterTwo: number[];

beforeAll(async () => {
  h = await createAdminFederation(3, PL_TASK);
  const logger = pino({ level: process.env['FEDGATE_TEST_LOG'] ?? 'silent' });
  privacy.push(...(await openSitePrivacies(h, 'pl-budgets', [TIGHT, LOOSE, LOOSE], logger)));
  const spy = (coordinator: AdminFederation['coordinator']): void =>
    spyOnSiteMessages(coordinator, (siteId, message) => {
      if (message.kind === 'refusal') refusals.push({ siteId, reason: message.reason });
      if (twoDone && message.kind === 'stage') stagesAfterTwo.push(siteId);
    });
  const startSites = (): RunningParticipant[] => [0, 1, 2].map((index) => h.startSite(index, undefined, { privacy: privacy[index] as SitePrivacy }));
  spy(await h.startCoordinator({ rounds: 2, minParticipants: 3 }));
  let daemons = startSites();
  await h.coordinator.done;
  afterTwo = await h.operatorClient().status();
  spentAfterTwo = privacy.map((site) => site.epsilonSpent());
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  await h.coordinator.stop();
  twoDone = true;
  spy(await h.startCoordinator({ rounds: 3, minParticipants: 2 }));
  daemons = startSites();
  await h.coordinator.done;
  afterThree = await h.operatorClient().status();
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('a federation training a task with participant-level DP, sites with budgets', () => {
  it('each site charged both rounds before training; GetStatus reports the same figure from the ledger, and no record-level DP', () => {
    expect(afterTwo.committedRounds).toBe(2);
    expect(afterTwo.recordLevelPrivacy).toBeNull();
    expect(afterTwo.participantLevelPrivacy).toMatchObject({ ...PARTICIPANT_LEVEL, roundsCounted: 2, delta: DELTA });
    expect(afterTwo.participantLevelPrivacy?.epsilonSpent).toBeCloseTo(epsilonOf(2), 6);
    for (const spent of spentAfterTwo) expect(spent).toBeCloseTo(afterTwo.participantLevelPrivacy?.epsilonSpent ?? NaN, 10);
  });

  it('the site that cannot afford a third round refuses it with PRIVACY_BUDGET_EXCEEDED before uploading, is charged nothing, and the round commits without it', async () => {
    expect(afterThree.committedRounds).toBe(3);
    expect(refusals.filter((refusal) => refusal.siteId === 'site-1').map((refusal) => refusal.reason)).toContain('PRIVACY_BUDGET_EXCEEDED');
    expect(refusals.filter((refusal) => refusal.siteId !== 'site-1')).toEqual([]);
    // Refused at RoundStart: not even a key advert, let alone a masked input; the round's survivors are the others.
    expect(stagesAfterTwo).not.toContain('site-1');
    expect(stagesAfterTwo).toContain('site-2');
    expect(privacy[0]?.epsilonSpent()).toBeCloseTo(spentAfterTwo[0] ?? NaN, 10);
    expect(privacy[0]?.epsilonSpent()).toBeLessThanOrEqual(TIGHT.epsilon);
    for (const site of privacy.slice(1)) expect(site.epsilonSpent()).toBeGreaterThan(spentAfterTwo[1] ?? Infinity);
    expect(afterThree.participantLevelPrivacy?.roundsCounted).toBe(3);
    const [third] = (await h.operatorClient().rounds()).slice(2);
    expect([...(third?.survivors ?? [])].sort()).toEqual(['site-2', 'site-3']);
    // Sites 2 and 3 trained in every committed round: their figure is the public one.
    for (const site of privacy.slice(1)) expect(site.epsilonSpent()).toBeCloseTo(afterThree.participantLevelPrivacy?.epsilonSpent ?? NaN, 10);
  });
});
