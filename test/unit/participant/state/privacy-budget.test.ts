import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeCurves, composeSteps, gaussianRdp, INTEGER_ORDERS, rdpToEpsilon, subsampledGaussianRdp } from '../../../../crypto/dp/rdp.js';
import { PRIVACY_BUDGET_FILE, PrivacyBudgetStore } from '../../../../participant/state/index.js';

const digest = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const roundId = (n: number): Uint8Array => Uint8Array.of(0, 0, 0, n, 9, 9, 9, 9);
const DATASET = digest(0xd1);
const TASK = digest(0x7a);
const BUDGET = { epsilon: 3, delta: 1e-5 };
/** One DP-SGD round: 300 steps at q = 0.01, sigma = 1.1. */
const ROUND = composeSteps(subsampledGaussianRdp(0.01, 1.1), 300);

describe('the site privacy budget store', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'fedgate-privacy-budget-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('sums the rounds it charged, per dataset and across tasks, and remembers them after a restart', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    expect(store.epsilonSpent(DATASET, 1e-5)).toBe(0);
    await store.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(1), curve: ROUND }, BUDGET);
    await store.spendWithinBudget(DATASET, { taskHash: digest(0x7b), roundId: roundId(1), curve: ROUND }, BUDGET);
    await store.record(digest(0xd2), { taskHash: TASK, roundId: roundId(1), curve: ROUND });
    const expected = rdpToEpsilon(composeSteps(ROUND, 2), 1e-5).epsilon;
    const reopened = await PrivacyBudgetStore.open(directory);
    expect(reopened.epsilonSpent(DATASET, 1e-5)).toBeCloseTo(expected, 12);
    expect(reopened.epsilonSpent(digest(0xd2), 1e-5)).toBeCloseTo(rdpToEpsilon(ROUND, 1e-5).epsilon, 12);
    expect(reopened.entries(DATASET).map((entry) => entry.taskHash[0])).toEqual([0x7a, 0x7b]);
  });

  it('answers before a round whether it would exceed the budget, and refuses it without charging', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    let rounds = 0;
    for (;;) {
      const check = store.check(DATASET, ROUND, BUDGET);
      if (!check.allowed) {
        expect(check.epsilonAfter).toBeGreaterThan(3);
        expect(check.epsilonBefore).toBeLessThanOrEqual(3);
        break;
      }
      await store.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(++rounds), curve: ROUND }, BUDGET);
    }
    expect(rounds).toBeGreaterThan(1);
    const before = store.epsilonSpent(DATASET, 1e-5);
    await expect(store.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(99), curve: ROUND }, BUDGET)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'PRIVACY_BUDGET_EXCEEDED' });
    expect(store.epsilonSpent(DATASET, 1e-5)).toBe(before);
    expect((await PrivacyBudgetStore.open(directory)).entries(DATASET)).toHaveLength(rounds);
  });

  it('charges a retried round once, and refuses the same round with another curve', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    const entry = { taskHash: TASK, roundId: roundId(1), curve: ROUND };
    await store.spendWithinBudget(DATASET, entry, BUDGET);
    await store.spendWithinBudget(DATASET, entry, BUDGET);
    await store.record(DATASET, entry);
    expect(store.entries(DATASET)).toHaveLength(1);
    await expect(store.record(DATASET, { ...entry, curve: composeSteps(ROUND, 2) })).rejects.toMatchObject({ reason: 'ROUND_ALREADY_CHARGED' });
  });

  it('lets only one of two concurrent rounds through when the budget holds only one', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    const heavy = composeSteps(subsampledGaussianRdp(0.01, 1.1), 4000);
    const single = rdpToEpsilon(heavy, 1e-5).epsilon;
    const budget = { epsilon: (single + rdpToEpsilon(composeSteps(heavy, 2), 1e-5).epsilon) / 2, delta: 1e-5 };
    const results = await Promise.allSettled([
      store.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(1), curve: heavy }, budget),
      store.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(2), curve: heavy }, budget),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((await PrivacyBudgetStore.open(directory)).entries(DATASET)).toHaveLength(1);
  });

  it('keeps what it had, in memory and on disk, when it crashes between writing and renaming', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    await store.record(DATASET, { taskHash: TASK, roundId: roundId(1), curve: ROUND });
    const crashing = await PrivacyBudgetStore.open(directory, {
      beforeRename: () => {
        throw new Error('simulated crash before rename');
      },
    });
    await expect(crashing.spendWithinBudget(DATASET, { taskHash: TASK, roundId: roundId(2), curve: ROUND }, BUDGET)).rejects.toThrow('simulated crash before rename');
    expect(crashing.entries(DATASET)).toHaveLength(1);
    expect((await PrivacyBudgetStore.open(directory)).entries(DATASET)).toHaveLength(1);
    expect(await readdir(directory)).toEqual([PRIVACY_BUDGET_FILE]);
  });

  it('takes curves bounded on integer orders only, counting the other orders as unbounded', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    const integerOnly = composeSteps(subsampledGaussianRdp(0.01, 1.1, INTEGER_ORDERS), 300);
    await store.record(DATASET, { taskHash: TASK, roundId: roundId(1), curve: integerOnly });
    const reopened = await PrivacyBudgetStore.open(directory);
    expect(reopened.epsilonSpent(DATASET, 1e-5)).toBeCloseTo(rdpToEpsilon(integerOnly, 1e-5).epsilon, 12);
    expect(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8')).toContain('null');
    // composing with a full-grid curve keeps the fractional orders unbounded
    await reopened.record(DATASET, { taskHash: TASK, roundId: roundId(2), curve: gaussianRdp(50) });
    const both = composeCurves([integerOnly, gaussianRdp(50, 1, INTEGER_ORDERS)]);
    expect(reopened.epsilonSpent(DATASET, 1e-5)).toBeCloseTo(rdpToEpsilon(both, 1e-5).epsilon, 12);
  });

  it('refuses malformed charges: a curve off its grid, a bad dataset id, a bad budget', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    await expect(store.record(DATASET, { taskHash: TASK, roundId: roundId(1), curve: gaussianRdp(2, 1, [2.05]) })).rejects.toMatchObject({ reason: 'INVALID_PRIVACY_CHARGE' });
    expect(() => store.spent(new Uint8Array(5))).toThrow(/32-byte hash/);
    expect(() => store.check(DATASET, ROUND, { epsilon: 0, delta: 1e-5 })).toThrow(/epsilon > 0/);
    await expect(store.record(DATASET, { taskHash: new Uint8Array(3), roundId: roundId(1), curve: ROUND })).rejects.toThrow(/taskHash/);
  });

  it('a damaged or newer file is an error naming the file, never a reset to zero spent', async () => {
    await writeFile(join(directory, PRIVACY_BUDGET_FILE), '{"formatVersion":1,"orders":[2],"datasets":[{"datasetId":"zz"}]}');
    await expect(PrivacyBudgetStore.open(directory)).rejects.toMatchObject({ code: 'DATA_LOSS', reason: 'PRIVACY_BUDGET_CORRUPT' });
    await writeFile(join(directory, PRIVACY_BUDGET_FILE), 'not json');
    await expect(PrivacyBudgetStore.open(directory)).rejects.toMatchObject({ reason: 'PRIVACY_BUDGET_CORRUPT' });
    await writeFile(join(directory, PRIVACY_BUDGET_FILE), '{"formatVersion":2}');
    await expect(PrivacyBudgetStore.open(directory)).rejects.toMatchObject({ reason: 'PRIVACY_BUDGET_VERSION' });
  });

  describe('spendOnce: what a site charges before it trains', () => {
    it('charges a round id once under any task hash: a repeat is refused (ROUND_ALREADY_CHARGED), not answered "allowed"', async () => {
      const store = await PrivacyBudgetStore.open(directory);
      await store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(1), curve: ROUND }, BUDGET);
      const before = await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8');
      await expect(store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(1), curve: ROUND }, BUDGET)).rejects.toMatchObject({ reason: 'ROUND_ALREADY_CHARGED' });
      await expect(store.spendOnce(DATASET, { taskHash: digest(0x7b), roundId: roundId(1), curve: ROUND }, BUDGET)).rejects.toMatchObject({ reason: 'ROUND_ALREADY_CHARGED' });
      expect(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8')).toBe(before);
      // The same round id on another dataset (other records) is another charge.
      await store.spendOnce(digest(0xd2), { taskHash: TASK, roundId: roundId(1), curve: ROUND }, BUDGET);
      expect(store.entries(DATASET)).toHaveLength(1);
    });

    it('lets exactly one of two concurrent charges of one round through (the look-up and the write share the lock)', async () => {
      const store = await PrivacyBudgetStore.open(directory);
      const results = await Promise.allSettled([1, 2, 3].map((task) => store.spendOnce(DATASET, { taskHash: digest(task), roundId: roundId(4), curve: ROUND }, BUDGET)));
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((result) => result.status === 'rejected').map((result) => (result as PromiseRejectedResult).reason as { reason: string }).map((error) => error.reason)).toEqual(['ROUND_ALREADY_CHARGED', 'ROUND_ALREADY_CHARGED']);
      expect((await PrivacyBudgetStore.open(directory)).entries(DATASET)).toHaveLength(1);
    });

    it('refuses a charge over the budget without writing, and without a cap records every round at the delta given', async () => {
      const store = await PrivacyBudgetStore.open(directory);
      const tight = { epsilon: rdpToEpsilon(ROUND, 1e-5).epsilon * 1.01, delta: 1e-5 };
      await store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(1), curve: ROUND }, tight);
      await expect(store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(2), curve: ROUND }, tight)).rejects.toMatchObject({ reason: 'PRIVACY_BUDGET_EXCEEDED' });
      expect((await PrivacyBudgetStore.open(directory)).entries(DATASET)).toHaveLength(1);
      const uncapped = await store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(2), curve: ROUND }, { delta: 1e-5 });
      expect(uncapped.epsilonAfter).toBeCloseTo(rdpToEpsilon(composeSteps(ROUND, 2), 1e-5).epsilon, 12);
      await expect(store.spendOnce(DATASET, { taskHash: TASK, roundId: roundId(3), curve: ROUND }, { delta: 1 })).rejects.toThrow(/delta in \(0, 1\)/);
    });
  });
});
