/**
 * A site enforces the RoundConfig's stage deadlines itself (issue: "Secrets outlive the round"): when the
 * coordinator does not open the next stage in time, the site leaves with STAGE_DEADLINE_PASSED and every
 * secret byte it held - keys, nonce, self-mask seed, pairwise mask seeds, the shares it holds - is zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { DEFAULT_DEADLINES, type RoundConfig, type StageDeadlines } from '../../../../crypto/secagg/config.js';
import { refusalText } from '../../../../crypto/secagg/site-refusals.js';
import { SessionRound, openSessionSites, type SessionSite, type SiteRound } from '../../../support/session-round.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let siteIds: string[];
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let counter = 0;

beforeAll(async () => {
  federation = cachedFederation(3, 'deadline-');
  siteIds = federation.sites.map((site) => site.siteId);
  ({ sites, remove } = await openSessionSites(federation));
});

afterAll(async () => {
  await remove();
});

function config(deadlines: Partial<StageDeadlines>): RoundConfig {
  counter += 1;
  // A model per round: a round that reached Unmask makes its sites refuse another on the same model.
  return { ...testRoundConfig({ participants: siteIds, degree: 2, counter }), modelHash: sha256(utf8(`model ${counter}`)), deadlines: { ...DEFAULT_DEADLINES, ...deadlines } };
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const isZero = (buffer: Uint8Array): boolean => buffer.every((byte) => byte === 0);

describe("a site's own stage deadlines", () => {
  it('ends a round the coordinator keeps open after the masked input and zeroises every secret it held', async () => {
    // Every stage but MaskedInput is generous: the coordinator stalls after the uploads.
    const round = new SessionRound(federation, config({ maskedInputMs: 1500 }), sites, () => ({ deadlineGraceMs: 0 })).start();
    await round.openKeyList();
    await round.openGraph();
    // What each site holds once it dealt its shares: both private keys, the nonce, b and its own b-share.
    const beforeMasking = new Map<string, Uint8Array[]>();
    await round.settle();
    await round.openShareDelivery();
    for (const [siteId, siteRound] of round.rounds) beforeMasking.set(siteId, siteRound.session.heldSecrets());
    await round.settle();
    const held = new Map<string, Uint8Array[]>();
    for (const [siteId, siteRound] of round.rounds) {
      expect(siteRound.uploads).toHaveLength(1);
      held.set(siteId, siteRound.session.heldSecrets());
      // Still holding the neighbours' shares while it waits for the consistency request.
      expect(held.get(siteId)?.some((buffer) => !isZero(buffer))).toBe(true);
    }

    const all = [...round.rounds.values()];
    await waitFor(() => all.every((siteRound: SiteRound) => siteRound.refusals().length > 0), 10_000, 'every site to leave at its deadline');
    for (const [siteId, siteRound] of round.rounds) {
      expect(siteRound.refusals()).toEqual([['STAGE_DEADLINE_PASSED', refusalText('STAGE_DEADLINE_PASSED')]]);
      expect(siteRound.session.state).toBe('failed');
      expect(siteRound.stages()).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys']);
      for (const buffer of [...(beforeMasking.get(siteId) ?? []), ...(held.get(siteId) ?? []), ...siteRound.session.heldSecrets()]) expect(isZero(buffer)).toBe(true);
      expect((sites.get(siteId) as SessionSite).guard.liveRound).toBeUndefined();
      const line = (sites.get(siteId) as SessionSite).lines('the coordinator did not open the next stage within the RoundConfig deadline: ending the round and zeroising its secrets')[0];
      expect(line).toMatchObject({ openedBy: 'share_delivery', waitedMs: 1500 });
    }
  });

  it('after the Unmask answer, erases the copies of the revealed shares it kept when no commit request comes', async () => {
    const round = new SessionRound(federation, config({ unmaskMs: 800 }), sites, () => ({ deadlineGraceMs: 0 })).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.openConsistency();
    await round.openUnmask();
    await round.settle();
    const held = new Map<string, Uint8Array[]>();
    for (const [siteId, siteRound] of round.rounds) {
      expect(siteRound.stages().at(-1)).toBe('unmask');
      held.set(siteId, siteRound.session.heldSecrets());
      // The shares it revealed, kept to answer a repeated request the same way.
      expect(held.get(siteId)?.some((buffer) => !isZero(buffer))).toBe(true);
    }
    const all = [...round.rounds.values()];
    await waitFor(() => all.every((siteRound) => siteRound.session.state !== 'running'), 10_000, 'every site to leave at its deadline');
    for (const [siteId, siteRound] of round.rounds) {
      expect(siteRound.refusals().map(([reason]) => reason)).toEqual(['STAGE_DEADLINE_PASSED']);
      for (const buffer of held.get(siteId) ?? []) expect(isZero(buffer)).toBe(true);
    }
  });

  it('ends a round whose key list never comes, so a stalled round does not block the next', async () => {
    const stalled = new SessionRound(federation, config({ advertiseKeysMs: 300 }), sites, () => ({ deadlineGraceMs: 100 })).start();
    await stalled.settle();
    const all = [...stalled.rounds.values()];
    await waitFor(() => all.every((siteRound) => siteRound.session.state !== 'running'), 10_000, 'every site to leave at its deadline');
    for (const siteRound of all) {
      expect(siteRound.refusals().map(([reason]) => reason)).toEqual(['STAGE_DEADLINE_PASSED']);
      expect(siteRound.session.heldSecrets().every(isZero)).toBe(true);
    }
    const next = new SessionRound(federation, config({}), sites).start();
    await next.runToCommitted();
    expect(next.aggregate?.maskedSurvivors).toEqual(siteIds);
  });
});
