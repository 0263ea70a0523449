/**
 * Mask recovery on the coordinator (crypto/secagg/server-unmask.ts), in real rounds of five sites on the
 * complete graph (k = 4, t = 3): two neighbouring sites dropped after ShareKeys (only the pairwise masks
 * with U3 members are removed, so the aggregate is the true sum of U3), a majority of a secret's holders
 * lying about their shares (the round aborts with UNRECOVERABLE_SECRET, blaming the dealer), and too few
 * Unmask answers (INSUFFICIENT_SHARE_HOLDERS at the unmask stage, naming the secrets short of holders).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClientMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, expectedSum, simulateRound, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';
import { lyingUnmaskAnswer } from '../../../support/unmask-lie.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);

beforeAll(() => {
  federation = cachedFederation(5, 'smk-');
}, 300_000);

const config = () => testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 40 });

describe('server unmask', () => {
  it('removes only the masks two dropped neighbours share with U3: the aggregate is the true sum of U3', () => {
    const [, , , d1, d2] = ids() as [string, string, string, string, string];
    const result = simulateRound({ federation, config: config(), drops: new Map([[d1, 'masked_input' as const], [d2, 'masked_input' as const]]) });
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.maskedSurvivors).toEqual(ids().slice(0, 3));
    expect(result.aggregate?.inconsistentShares).toEqual([]);
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  });

  it('subtracts no mask with a site that dealt no shares: one site dropped at ShareKeys, its neighbour after it', () => {
    // Only the neighbour's s_sk is recovered; a pairwise mask of the neighbour with the site that dealt
    // nothing was never added by anyone, so removing it would corrupt the aggregate.
    const [, , , early, late] = ids() as [string, string, string, string, string];
    const result = simulateRound({ federation, config: config(), drops: new Map([[early, 'share_keys' as const], [late, 'masked_input' as const]]) });
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.maskedSurvivors).toEqual(ids().slice(0, 3));
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  });

  it('aborts with UNRECOVERABLE_SECRET, blaming the dealer, when a majority of its holders reveal false shares', () => {
    const [dealer, ...holders] = ids() as [string, ...string[]];
    const liars = holders.slice(0, 3);
    const driver: RoundDriver = new RoundDriver({
      federation,
      config: config(),
      outbox: (siteId: string, message: ClientMessage): ClientMessage => {
        if (message.stage !== 'unmask' || !liars.includes(siteId)) return message;
        return lyingUnmaskAnswer(driver, federation, siteId, message, dealer, 0x11 << liars.indexOf(siteId));
      },
    });
    const result = driver.run();
    expect(driver.rejections).toEqual([]);
    expect(result.outcome).toBe('aborted');
    expect(result.abort).toMatchObject({ code: 'ABORTED', reason: 'UNRECOVERABLE_SECRET', stage: 'unmask', site: dealer });
    expect(result.aggregate).toBeUndefined();
  });

  it('aborts with INSUFFICIENT_SHARE_HOLDERS at the unmask stage when too few sites answer, naming what is short', () => {
    const late = ids().slice(2);
    const result = simulateRound({ federation, config: config(), drops: new Map(late.map((siteId) => [siteId, 'unmask' as const])) });
    expect(result.outcome).toBe('aborted');
    expect(result.abort).toMatchObject({ code: 'ABORTED', reason: 'INSUFFICIENT_SHARE_HOLDERS', stage: 'unmask' });
    expect(result.abort?.message).toContain(`Unmask: 5 needed secret(s) lack t = 3 live holders: self_mask of ${JSON.stringify(ids()[0])} has 2;`);
  });
});
