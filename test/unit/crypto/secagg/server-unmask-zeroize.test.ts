/**
 * The coordinator zeroizes every secret it recovers (b of U3 members, s_sk of dropouts) and the revealed
 * shares it decoded once it has unmasked the sum; and when one needed secret cannot be recovered, the
 * secrets it had already recovered before the round aborts, so no unmasking key outlives the round.
 * crypto/shamir.ts's recoverWithCheck is wrapped to see the shares it is given and each recovered secret.
 */
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClientMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, expectedSum, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';
import { lyingUnmaskAnswer } from '../../../support/unmask-lie.js';

const recovered = vi.hoisted(() => [] as Uint8Array[]);
/** The y of every share handed to recoverWithCheck. */
const given = vi.hoisted(() => [] as Uint8Array[]);

vi.mock('../../../../crypto/shamir.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../../../crypto/shamir.js')>();
  return {
    ...original,
    recoverWithCheck: (...args: Parameters<typeof original.recoverWithCheck>) => {
      for (const share of args[0]) given.push(share.y);
      const result = original.recoverWithCheck(...args);
      recovered.push(result.secret);
      return result;
    },
  };
});

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);

beforeAll(() => {
  federation = cachedFederation(5, 'smk-');
}, 300_000);

beforeEach(() => {
  recovered.length = 0;
  given.length = 0;
});

const isZero = (bytes: Uint8Array): boolean => bytes.every((byte) => byte === 0);

describe('an unrecoverable secret', () => {
  it('zeroizes the secrets already recovered before the round aborts', () => {
    // The last dealer in id order is recovered last: the other four b are recovered before it fails.
    const all = ids();
    const dealer = all[all.length - 1] as string;
    const liars = all.slice(0, 3);
    const driver: RoundDriver = new RoundDriver({
      federation,
      config: testRoundConfig({ participants: all, degree: 4, threshold: 3, parameters: 40 }),
      outbox: (siteId: string, message: ClientMessage): ClientMessage => {
        if (message.stage !== 'unmask' || !liars.includes(siteId)) return message;
        return lyingUnmaskAnswer(driver, federation, siteId, message, dealer, 0x11 << liars.indexOf(siteId));
      },
    });
    const result = driver.run();
    expect(result.abort).toMatchObject({ reason: 'UNRECOVERABLE_SECRET', site: dealer });
    expect(recovered).toHaveLength(4);
    for (const secret of recovered) expect(secret.every((byte) => byte === 0)).toBe(true);
  });
});

describe('a round that aggregates', () => {
  it('zeroizes every recovered secret (b of U3, s_sk of a dropout) and every share it read, after unmasking', () => {
    const all = ids();
    const dropout = all[2] as string;
    const result = new RoundDriver({
      federation,
      config: testRoundConfig({ participants: all, degree: 4, threshold: 3, parameters: 40 }),
      drops: new Map([[dropout, 'masked_input']]),
    }).run();
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.maskedSurvivors).not.toContain(dropout);
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
    // b of the four U3 members and s_sk of the dropout.
    expect(recovered).toHaveLength(5);
    expect(recovered.every(isZero)).toBe(true);
    expect(given.length).toBeGreaterThanOrEqual(5 * 3);
    expect(given.every(isZero)).toBe(true);
  });
});
