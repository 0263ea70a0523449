/**
 * What a site tells the coordinator when something goes wrong locally (issue: "Refusals and errors
 * leak"): a reason code and the code's fixed text, never the error's own text; and local training that
 * diverges is not a refusal at all but a zero-weight update.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { TrainerError } from '../../../../participant/trainer/index.js';
import { SessionRound, openSessionSites, smallUpdate, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let siteIds: string[];
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let counter = 0;

beforeAll(async () => {
  federation = cachedFederation(3, 'refuse-');
  siteIds = federation.sites.map((site) => site.siteId);
  ({ sites, remove } = await openSessionSites(federation));
});

afterAll(async () => {
  await remove();
});

function config(): RoundConfig {
  counter += 1;
  return testRoundConfig({ participants: siteIds, degree: 2, counter });
}

const LOCAL_DETAIL = 'epoch 3, step 7: loss is Infinity at index 12 of /srv/site/data.csv';

describe('refusals carry reason codes only', () => {
  it('a local failure reaches the coordinator as SITE_ERROR with its fixed text; the detail stays in the site log', async () => {
    const failing = siteIds[0] as string;
    const round = new SessionRound(federation, config(), sites, (siteId) =>
      siteId === failing
        ? {
            train: async () => {
              throw new Error(LOCAL_DETAIL);
            },
          }
        : {},
    ).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.settle();
    const refusals = round.site(failing).refusals();
    expect(refusals).toEqual([['SITE_ERROR', refusalText('SITE_ERROR')]]);
    for (const [reason, message] of refusals) {
      for (const local of ['3', '7', '12', 'Infinity', 'epoch', '/srv']) {
        expect(reason).not.toContain(local);
        expect(message).not.toContain(local);
      }
    }
    expect(round.site(failing).session.state).toBe('failed');
    expect((sites.get(failing) as SessionSite).lines('leaving the round').map((line) => line['detail'])).toEqual([LOCAL_DETAIL]);
    round.end();
  });

  it("a trainer's own error code (which could describe the local data) is not sent either", async () => {
    const failing = siteIds[1] as string;
    const round = new SessionRound(federation, config(), sites, (siteId) =>
      siteId === failing
        ? {
            train: async () => {
              throw new TrainerError('INVALID_ARGUMENT', 'DATASET_EMPTY', 'dataset has no examples; expected at least one');
            },
          }
        : {},
    ).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.settle();
    expect(round.site(failing).refusals()).toEqual([['SITE_ERROR', refusalText('SITE_ERROR')]]);
    round.end();
  });
});

describe('diverging local training', () => {
  it('uploads a zero-weight update instead of leaving the round, and the round aggregates without its weight', async () => {
    const diverging = siteIds[2] as string;
    const round = new SessionRound(federation, config(), sites, (siteId) =>
      siteId === diverging
        ? {
            train: async (roundConfig) => ({
              ...smallUpdate(roundConfig, 0),
              trainingExamples: 0,
              divergence: 'epoch 1, step 2: the training loss is NaN',
            }),
          }
        : {},
    ).start();
    await round.runToCommitted();
    expect(round.site(diverging).refusals()).toEqual([]);
    expect(round.aggregate?.maskedSurvivors).toEqual(siteIds);
    // Two sites of 50 examples each (w = 50/500): the diverging one adds no weight.
    expect(round.aggregate?.weightSum).toBeCloseTo(0.2, 4);
    expect((sites.get(diverging) as SessionSite).lines('local training diverged: uploading a zero-weight update instead of leaving the round')).toHaveLength(1);
  });
});
