/**
 * A real federation (coordinator on 127.0.0.1:0 with mutual TLS, three participant daemons) training a
 * task with record-level DP: each site charges every round to its own budget file before it trains, the
 * Admin API reports the task's epsilon from the public parameters, and a site whose budget would be
 * exceeded refuses the next round with PRIVACY_BUDGET_EXCEEDED while the others go on without it.
 *
 * Until DP-SGD training lands the trainer adds no noise: what is checked here is the accounting and the
 * refusals, which take their numbers from the task alone.
 */
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../crypto/bytes.js';
import { dpSgdRoundsEpsilon } from '../../crypto/dp/dp-sgd-round.js';
import { parseTaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import type { RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SitePrivacy } from '../../participant/round/site-privacy.js';
import { PrivacyBudgetStore } from '../../participant/state/index.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';
import { openSitePrivacies, spyOnSiteMessages } from '../support/site-privacy-federation.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import type { GetStatusResponse } from '../../proto/admin-messages.js';

const RECORD_LEVEL = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.05, stepsPerRound: 20 };
const DP_TASK = pinTask(parseTaskDocument({ ...DIGITS_MLP_TASK, model: { kind: 'logreg', inputShape: [64], classes: 10 }, initialModel: undefined, privacy: { recordLevel: RECORD_LEVEL } }));
/** Logistic regression on 64 features, 10 classes. */
const PARAMETERS = 64 * 10 + 10;
const DELTA = 1e-5;
const epsilonOf = (rounds: number): number => dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: PARAMETERS }, rounds, DELTA);
/** Site 1 can afford two rounds (epsilon ~2.96) but not three (~3.29); the others twenty. */
const TIGHT = { epsilon: 3.1, delta: DELTA };
const LOOSE = { epsilon: 50, delta: DELTA };

let h: AdminFederation;
const privacy: SitePrivacy[] = [];
const refusals: { siteId: string; reason: string }[] = [];
let afterTwo: GetStatusResponse;
let afterThree: GetStatusResponse;
/** Each site's own figure once the first coordinator stopped. */
let spentAfterTwo: number[];

beforeAll(async () => {
  h = await createAdminFederation(3, DP_TASK);
  const logger = pino({ level: process.env['FEDGATE_TEST_LOG'] ?? 'silent' });
  privacy.push(...(await openSitePrivacies(h, 'budgets', [TIGHT, LOOSE, LOOSE], logger)));
  const spy = (coordinator: AdminFederation['coordinator']): void =>
    spyOnSiteMessages(coordinator, (siteId, message) => {
      if (message.kind === 'refusal') refusals.push({ siteId, reason: message.reason });
    });
  // Two rounds with every site, then (same state directory) one more, which site-1 cannot afford.
  const startSites = (): RunningParticipant[] => [0, 1, 2].map((index) => h.startSite(index, undefined, { privacy: privacy[index] as SitePrivacy }));
  spy(await h.startCoordinator({ rounds: 2, minParticipants: 3 }));
  let daemons = startSites();
  await h.coordinator.done;
  afterTwo = await h.operatorClient().status();
  spentAfterTwo = privacy.map((site) => site.epsilonSpent());
  // The coordinator comes back on another port: the sites restart too, with their state and budget files.
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  await h.coordinator.stop();
  spy(await h.startCoordinator({ rounds: 3, minParticipants: 2 }));
  daemons = startSites();
  await h.coordinator.done;
  afterThree = await h.operatorClient().status();
}, 90_000);

afterAll(async () => {
  await h?.close();
});

describe('a federation training a task with record-level DP', () => {
  it('each site charged every round it trained in before training: its own figure is the public one after two rounds', async () => {
    expect(afterTwo.committedRounds).toBe(2);
    expect(afterTwo.recordLevelPrivacy?.epsilonSpent).toBeCloseTo(epsilonOf(2), 10);
    for (const spent of spentAfterTwo) expect(spent).toBeCloseTo(epsilonOf(2), 10);
    // The rounds charged are the committed ones, under the federation's task hash.
    const ledger = await h.operatorClient().rounds();
    const store = await PrivacyBudgetStore.open(join(h.work.path, 'budgets', 'site-2'));
    const entries = store.entries(privacy[1]?.policy.datasetId as Uint8Array);
    expect(entries.map((entry) => Buffer.from(entry.roundId).readBigUInt64BE(0))).toEqual(ledger.map((round) => BigInt(round.roundId?.counter ?? -1)));
    for (const entry of entries) expect(toHex(entry.taskHash)).toBe(afterTwo.taskHash.toString('hex'));
  });

  it('GetStatus reports the public parameters and the epsilon of the committed rounds at delta 1e-5', () => {
    expect(afterThree.recordLevelPrivacy).toMatchObject({ ...RECORD_LEVEL, modelParameters: PARAMETERS, roundsCounted: 3, delta: DELTA });
    expect(afterThree.recordLevelPrivacy?.epsilonSpent).toBeCloseTo(epsilonOf(3), 10);
    expect(afterThree.recordLevelPrivacy?.epsilonPerRound).toBeCloseTo(epsilonOf(1), 10);
  });

  it('the site that cannot afford a third round refuses it with PRIVACY_BUDGET_EXCEEDED, is charged nothing for it, and the round commits without it', async () => {
    expect(afterThree.committedRounds).toBe(3);
    expect(refusals.filter((refusal) => refusal.siteId === 'site-1').map((refusal) => refusal.reason)).toContain('PRIVACY_BUDGET_EXCEEDED');
    expect(refusals.filter((refusal) => refusal.siteId !== 'site-1')).toEqual([]);
    expect(privacy[0]?.epsilonSpent()).toBeCloseTo(epsilonOf(2), 10);
    expect(privacy[0]?.epsilonSpent()).toBeLessThanOrEqual(TIGHT.epsilon);
    for (const site of privacy.slice(1)) expect(site.epsilonSpent()).toBeCloseTo(epsilonOf(3), 10);
    const [third] = (await h.operatorClient().rounds()).slice(2);
    expect([...(third?.survivors ?? [])].sort()).toEqual(['site-2', 'site-3']);
  });
});
