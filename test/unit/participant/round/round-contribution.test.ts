/**
 * One contribution per model (issue: "Two rounds on one model"): a site records model hash H - on disk -
 * before its Unmask answer leaves (or, in a plaintext round, before its upload), and refuses any later
 * round on H with MODEL_ALREADY_CONTRIBUTED. A round that ends before unmasking may be retried on H.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { SessionRound, SiteRound, openSessionSites, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, testPolicy, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

const FEDERATION_ID = 'fedgate-test';
let federation: TestFederation;
let siteIds: string[];
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let counter = 0;

beforeAll(async () => {
  federation = cachedFederation(3, 'contrib-');
  siteIds = federation.sites.map((site) => site.siteId);
});

afterAll(async () => {
  await remove();
});

/** A fresh set of sites (fresh state directories) per test. */
async function freshSites(): Promise<void> {
  if (remove !== undefined) await remove();
  ({ sites, remove } = await openSessionSites(federation));
}

function config(modelHash: Uint8Array, overrides: Partial<RoundConfig> = {}): RoundConfig {
  counter += 1;
  return { ...testRoundConfig({ participants: siteIds, degree: 2, counter }), modelHash, ...overrides };
}

const MODEL = sha256(utf8('model H'));

describe('one contribution per model', () => {
  it('records H on disk before the Unmask answer leaves, then refuses another round on H; another model is fine', async () => {
    await freshSites();
    const recordedAtUnmask = new Map<string, boolean>();
    const first = new SessionRound(federation, config(MODEL), sites, (siteId) => ({
      onSend: (message) => {
        if (message.kind === 'stage' && message.message.stage === 'unmask') recordedAtUnmask.set(siteId, (sites.get(siteId) as SessionSite).state.hasContributed(FEDERATION_ID, MODEL));
      },
      onUpload: () => {
        // A masked upload alone reveals nothing: H is not recorded yet.
        expect((sites.get(siteId) as SessionSite).state.hasContributed(FEDERATION_ID, MODEL)).toBe(false);
      },
    })).start();
    await first.runToCommitted();
    expect(first.aggregate?.maskedSurvivors).toEqual(siteIds);
    expect([...recordedAtUnmask.values()]).toEqual([true, true, true]);

    // The very same RoundStart again is first of all a replay.
    const replay = new SiteRound(sites.get(siteIds[0] as string) as SessionSite, federation, first.config).start();
    await replay.session.settled();
    expect(replay.refusals().map(([reason]) => reason)).toEqual(['ROUND_NOT_FRESH']);

    for (const [index, siteId] of siteIds.entries()) {
      const site = sites.get(siteId) as SessionSite;
      // After a restart too: the record is on disk.
      if (index === 0) await site.restart();
      const highest = site.state.highestRoundCounter(FEDERATION_ID);
      const again = new SiteRound(site, federation, config(MODEL)).start();
      await again.session.settled();
      expect(again.refusals()).toEqual([['MODEL_ALREADY_CONTRIBUTED', refusalText('MODEL_ALREADY_CONTRIBUTED')]]);
      expect(again.stages()).toEqual([]);
      // Refused before the counter moved.
      expect(site.state.highestRoundCounter(FEDERATION_ID)).toBe(highest);
      const otherModel = new SiteRound(site, federation, config(sha256(utf8('model H+1')))).start();
      await otherModel.session.settled();
      expect(otherModel.stages()).toEqual(['advertise_keys']);
      otherModel.session.stop('done');
    }
  });

  it('lets a round that ended before unmasking be retried on the same model', async () => {
    await freshSites();
    const aborted = new SessionRound(federation, config(MODEL), sites).start();
    await aborted.openKeyList();
    await aborted.openGraph();
    await aborted.openShareDelivery();
    await aborted.openConsistency();
    await aborted.settle();
    for (const round of aborted.rounds.values()) {
      expect(round.stages()).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys', 'consistency_check']);
      round.session.stop('the coordinator aborted the round before unmasking');
    }
    for (const site of sites.values()) expect(site.state.hasContributed(FEDERATION_ID, MODEL)).toBe(false);

    const retry = new SessionRound(federation, config(MODEL), sites).start();
    await retry.runToCommitted();
    expect(retry.aggregate?.maskedSurvivors).toEqual(siteIds);
  });

  it('records H before a plaintext upload leaves: the upload itself is the update in the clear', async () => {
    await freshSites();
    const recordedAtUpload: boolean[] = [];
    const plaintext = new SessionRound(federation, config(MODEL, { plaintext: true }), sites, (siteId) => ({
      policy: testPolicy({ allowPlaintext: true }),
      onUpload: () => recordedAtUpload.push((sites.get(siteId) as SessionSite).state.hasContributed(FEDERATION_ID, MODEL)),
    })).start();
    await plaintext.openKeyList();
    await plaintext.openGraph();
    await plaintext.openShareDelivery();
    await plaintext.settle();
    expect(recordedAtUpload).toEqual([true, true, true]);
  });
});
