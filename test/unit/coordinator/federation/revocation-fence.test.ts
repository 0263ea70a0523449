/**
 * The revocation fence (issue 11, item 1): revocations and ledger appends never overlap, a revocation is
 * dated to a whole second strictly after every commit already written (the CRL keeps seconds, and the
 * verifier refuses signatures made at or after the date), and never in the future.
 */
import { describe, expect, it } from 'vitest';
import { RevocationFence, revocationDate } from '../../../../coordinator/federation/revocation-fence.js';

const at = (iso: string): number => Date.parse(iso);

describe('revocationDate', () => {
  it.each([
    ['no record yet: the second the revocation starts in', '2030-01-01T00:00:05.700Z', undefined, '2030-01-01T00:00:05.000Z'],
    ['last commit in an earlier second', '2030-01-01T00:00:05.700Z', '2030-01-01T00:00:04.999Z', '2030-01-01T00:00:05.000Z'],
    ['last commit in the same second: the next second', '2030-01-01T00:00:05.700Z', '2030-01-01T00:00:05.100Z', '2030-01-01T00:00:06.000Z'],
    ['last commit exactly on the second: still after it', '2030-01-01T00:00:05.700Z', '2030-01-01T00:00:05.000Z', '2030-01-01T00:00:06.000Z'],
    ['last commit ahead of the clock (a clock step back)', '2030-01-01T00:00:05.700Z', '2030-01-01T00:00:09.300Z', '2030-01-01T00:00:10.000Z'],
  ])('%s', (_case, now, lastCommit, expected) => {
    expect(revocationDate(at(now), lastCommit === undefined ? Number.NEGATIVE_INFINITY : at(lastCommit)).toISOString()).toBe(expected);
  });
});

/** A fence on a clock the test moves; sleeping moves it. */
function fakeFence(startIso: string, lastCommittedAt?: Date): { fence: RevocationFence; clock: { now: number }; slept: number[] } {
  const clock = { now: at(startIso) };
  const slept: number[] = [];
  const fence = new RevocationFence(lastCommittedAt, () => clock.now, async (ms) => {
    slept.push(ms);
    clock.now += ms;
  });
  return { fence, clock, slept };
}

describe('RevocationFence', () => {
  it('dates a revocation after a commit of the same second, waiting for that second to pass', async () => {
    const { fence, clock, slept } = fakeFence('2030-01-01T00:00:05.250Z');
    const committedAt = await fence.commit(async (date) => date);
    clock.now += 100;
    const revokedAt = await fence.revoke(async (date) => {
      // Never in the future: the CA signs the CRL with this thisUpdate.
      expect(date.getTime()).toBeLessThanOrEqual(clock.now);
      return date;
    });
    expect(committedAt.toISOString()).toBe('2030-01-01T00:00:05.250Z');
    expect(revokedAt.toISOString()).toBe('2030-01-01T00:00:06.000Z');
    expect(slept).toEqual([650]);
  });

  it('dates a revocation after the ledger head it was opened with', async () => {
    const { fence } = fakeFence('2030-01-01T00:00:05.250Z', new Date('2030-01-01T00:00:05.900Z'));
    expect((await fence.revoke(async (date) => date)).toISOString()).toBe('2030-01-01T00:00:06.000Z');
  });

  it('never lets a commit time go backwards', async () => {
    const { fence, clock } = fakeFence('2030-01-01T00:00:05.250Z');
    await fence.commit(async () => undefined);
    clock.now -= 2000;
    expect((await fence.commit(async (date) => date)).toISOString()).toBe('2030-01-01T00:00:05.250Z');
  });

  it('runs an append only after a revocation in flight is live, and a revocation only after an append in flight is durable', async () => {
    const fence = new RevocationFence();
    const order: string[] = [];
    let finishRevocation: () => void = () => undefined;
    const revocation = fence.revoke(async () => {
      order.push('revocation started');
      await new Promise<void>((resolve) => (finishRevocation = resolve));
      order.push('revocation live');
    });
    const append = fence.commit(async () => {
      order.push('append');
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(['revocation started']);
    finishRevocation();
    await Promise.all([revocation, append]);
    expect(order).toEqual(['revocation started', 'revocation live', 'append']);

    let finishAppend: () => void = () => undefined;
    const slowAppend = fence.commit(() => new Promise<void>((resolve) => (finishAppend = resolve)).then(() => void order.push('slow append durable')));
    const nextRevocation = fence.revoke(async () => void order.push('next revocation'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    finishAppend();
    await Promise.all([slowAppend, nextRevocation]);
    expect(order.slice(-2)).toEqual(['slow append durable', 'next revocation']);
  });

  it('keeps going after a failed revocation or append', async () => {
    const fence = new RevocationFence();
    await expect(fence.revoke(async () => Promise.reject(new Error('CA directory locked')))).rejects.toThrow('CA directory locked');
    await expect(fence.commit(async () => 'appended')).resolves.toBe('appended');
  });
});
