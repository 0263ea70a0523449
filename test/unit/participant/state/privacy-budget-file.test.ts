/**
 * The privacy budget file as the store writes and reads it. A damaged file must be an error naming what
 * is wrong, never read as "nothing spent": a site that forgot what it spent would train past its budget.
 * Each row damages one field of a file the store wrote itself.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeSteps, subsampledGaussianRdp } from '../../../../crypto/dp/rdp.js';
import { PRIVACY_BUDGET_FILE, PrivacyBudgetStore } from '../../../../participant/state/index.js';
import { FedgateError } from '../../../../platform/index.js';
import { rejectedBy } from '../../../support/thrown.js';

const digest = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const hex = (byte: number): string => Buffer.from(digest(byte)).toString('hex');
const ROUND = composeSteps(subsampledGaussianRdp(0.01, 1.1), 300);
const BUDGET = { epsilon: 3, delta: 1e-5 };

type BudgetFile = { formatVersion: unknown; orders: unknown[]; datasets: { datasetId: unknown; entries: Record<string, unknown>[] }[] };

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-privacy-budget-file-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A budget file the store wrote: three datasets, one with two rounds. */
async function writtenBudget(): Promise<BudgetFile> {
  const store = await PrivacyBudgetStore.open(directory);
  // Out of id order (d3, d1, d2), so that the written order is the sort's and not the insertion's.
  await store.record(digest(0xd3), { taskHash: digest(0x7a), roundId: Uint8Array.of(1, 2), curve: ROUND });
  await store.record(digest(0xd1), { taskHash: digest(0x7a), roundId: Uint8Array.of(1, 2), curve: ROUND });
  await store.record(digest(0xd2), { taskHash: digest(0x7a), roundId: Uint8Array.of(1, 2), curve: ROUND });
  await store.record(digest(0xd1), { taskHash: digest(0x7b), roundId: Uint8Array.of(3, 4), curve: ROUND });
  return JSON.parse(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8')) as BudgetFile;
}

async function reopenWith(document: unknown): Promise<unknown> {
  await writeFile(join(directory, PRIVACY_BUDGET_FILE), JSON.stringify(document));
  return PrivacyBudgetStore.open(directory).then(
    () => undefined,
    (error: unknown) => error,
  );
}

const firstEntry = (budget: BudgetFile, change: Record<string, unknown>): BudgetFile => ({
  ...budget,
  datasets: [{ ...budget.datasets[0]!, entries: [{ ...budget.datasets[0]!.entries[0], ...change }] }, ...budget.datasets.slice(1)],
});

describe('the privacy budget file', () => {
  it('lists datasets by id whatever order they were charged in, each round with its task, round id and curve', async () => {
    const budget = await writtenBudget();
    expect(budget.formatVersion).toBe(1);
    expect(budget.datasets.map((dataset) => dataset.datasetId)).toEqual([hex(0xd1), hex(0xd2), hex(0xd3)]);
    expect(budget.datasets[0]!.entries.map((entry) => [entry['taskHash'], entry['roundId']])).toEqual([
      [hex(0x7a), '0102'],
      [hex(0x7b), '0304'],
    ]);
    expect(budget.datasets[0]!.entries[0]!['rdp']).toHaveLength(budget.orders.length);
  });

  const damage: [string, (budget: BudgetFile) => unknown, string][] = [
    ['JSON null', () => null, 'is not a JSON object'],
    ['a JSON number', () => 7, 'is not a JSON object'],
    ['no orders', (budget) => ({ ...budget, orders: undefined }), 'has no valid list of RDP orders'],
    ['an empty list of orders', (budget) => ({ ...budget, orders: [] }), 'has no valid list of RDP orders'],
    ['an order of 1', (budget) => ({ ...budget, orders: [1, ...budget.orders.slice(1)] }), 'has no valid list of RDP orders'],
    ['an order given as text', (budget) => ({ ...budget, orders: ['2', ...budget.orders.slice(1)] }), 'has no valid list of RDP orders'],
    ['no datasets list', (budget) => ({ ...budget, datasets: {} }), 'has no datasets list'],
    ['a dataset that is null', (budget) => ({ ...budget, datasets: [null] }), 'datasets[0].datasetId must be a 64-character hex digest'],
    ['a dataset id one byte short', (budget) => ({ ...budget, datasets: [{ ...budget.datasets[0], datasetId: hex(0xd1).slice(2) }] }), 'datasets[0].datasetId must be a 64-character hex digest'],
    ['a dataset id in upper case', (budget) => ({ ...budget, datasets: [{ ...budget.datasets[0], datasetId: hex(0xd1).toUpperCase() }] }), 'datasets[0].datasetId must be'],
    ['a dataset listed twice', (budget) => ({ ...budget, datasets: [budget.datasets[0], budget.datasets[0]] }), `datasets[1] repeats dataset ${hex(0xd1)}`],
    ['entries that are not a list', (budget) => ({ ...budget, datasets: [{ ...budget.datasets[0], entries: {} }] }), 'datasets[0].entries must be a list'],
    ['an entry that is null', (budget) => ({ ...budget, datasets: [{ ...budget.datasets[0], entries: [null] }] }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['a task hash wrapped in a list', (budget) => firstEntry(budget, { taskHash: [hex(0x7a)] }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['an entry without a task hash', (budget) => firstEntry(budget, { taskHash: undefined }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['a round id of odd length', (budget) => firstEntry(budget, { roundId: '012' }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['an empty round id', (budget) => firstEntry(budget, { roundId: '' }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['a round id that is not hex', (budget) => firstEntry(budget, { roundId: 'zz' }), 'datasets[0].entries[0] must hold hex taskHash and roundId'],
    ['a curve one value short', (budget) => firstEntry(budget, { rdp: (budget.datasets[0]!.entries[0]!['rdp'] as unknown[]).slice(1) }), 'datasets[0].entries[0].rdp must hold'],
    ['a negative curve value', (budget) => firstEntry(budget, { rdp: (budget.datasets[0]!.entries[0]!['rdp'] as number[]).map((value, i) => (i === 0 ? -1 : value)) }), 'datasets[0].entries[0].rdp must hold'],
    ['a curve value given as text', (budget) => firstEntry(budget, { rdp: (budget.datasets[0]!.entries[0]!['rdp'] as number[]).map((value, i) => (i === 0 ? '0.5' : value)) }), 'datasets[0].entries[0].rdp must hold'],
    ['a curve that is not a list', (budget) => firstEntry(budget, { rdp: 0.5 }), 'datasets[0].entries[0].rdp must hold'],
  ];

  it.each(damage)('refuses %s, naming the field and saying to restore it', async (_name, change, text) => {
    const error = await reopenWith(change(await writtenBudget()));
    expect(error).toMatchObject({ code: 'DATA_LOSS', reason: 'PRIVACY_BUDGET_CORRUPT' });
    const message = (error as Error).message;
    expect(message).toContain(`the privacy budget file ${join(directory, PRIVACY_BUDGET_FILE)} `);
    expect(message).toContain(text);
    expect(message).toContain('restore it from a backup');
  });

  it('reads an unbounded order (null) back as unbounded, and a zero curve value as zero', async () => {
    const budget = await writtenBudget();
    const rdp = (budget.datasets[0]!.entries[0]!['rdp'] as (number | null)[]).map((value, i) => (i === 0 ? null : value));
    expect(await reopenWith(firstEntry(budget, { rdp }))).toBeUndefined();
    const zero = (budget.datasets[0]!.entries[0]!['rdp'] as number[]).map(() => 0);
    expect(await reopenWith(firstEntry(budget, { rdp: zero }))).toBeUndefined();
  });

  it('refuses text that is not JSON, quoting the parser, and names the version it reads', async () => {
    await writeFile(join(directory, PRIVACY_BUDGET_FILE), '{"formatVersion": 1,');
    await expect(PrivacyBudgetStore.open(directory)).rejects.toMatchObject({ reason: 'PRIVACY_BUDGET_CORRUPT', message: expect.stringMatching(/is not JSON \(.+\)/) });
    await writeFile(join(directory, PRIVACY_BUDGET_FILE), '{"formatVersion": 2}');
    await expect(PrivacyBudgetStore.open(directory)).rejects.toMatchObject({ message: expect.stringContaining('has format version 2; this fedgate reads version 1') });
  });
});

describe('what a charge must be', () => {
  it('refuses the same round again with a curve that differs at one order only', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    const entry = { taskHash: digest(0x7a), roundId: Uint8Array.of(5), curve: ROUND };
    await store.record(digest(0xd1), entry);
    const rdp = [...ROUND.rdp];
    rdp[rdp.length - 1] = (rdp[rdp.length - 1] as number) * 2;
    await expect(store.record(digest(0xd1), { ...entry, curve: { orders: ROUND.orders, rdp } })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('round 05 of task 7a7a7a7a7a7a7a7a... is al') });
    await store.record(digest(0xd1), entry);
    expect(store.entries(digest(0xd1))).toHaveLength(1);
  });

  it.each([
    ['an empty round id', { roundId: new Uint8Array(0) }],
    ['a round id of 65 bytes', { roundId: new Uint8Array(65) }],
    ['a round id given as hex', { roundId: '05' }],
    ['no curve', { curve: null }],
    ['a curve without values', { curve: { orders: ROUND.orders } }],
    ['a curve with fewer values than orders', { curve: { orders: ROUND.orders, rdp: ROUND.rdp.slice(1) } }],
    ['a negative curve value', { curve: { orders: ROUND.orders, rdp: ROUND.rdp.map((value, i) => (i === 0 ? -0.1 : value)) } }],
    ['a NaN curve value', { curve: { orders: ROUND.orders, rdp: ROUND.rdp.map((value, i) => (i === 0 ? Number.NaN : value)) } }],
    ['a curve value given as text', { curve: { orders: ROUND.orders, rdp: ROUND.rdp.map((value, i) => (i === 0 ? '0.1' : value)) } }],
  ])('refuses a charge with %s and records nothing', async (_name, change) => {
    const store = await PrivacyBudgetStore.open(directory);
    const entry = { taskHash: digest(0x7a), roundId: Uint8Array.of(5), curve: ROUND, ...change };
    await expect(store.record(digest(0xd1), entry as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_PRIVACY_CHARGE' });
    expect(store.entries(digest(0xd1))).toEqual([]);
  });

  it('takes a round id of 64 bytes and a zero curve value', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    await store.record(digest(0xd1), { taskHash: digest(0x7a), roundId: new Uint8Array(64).fill(1), curve: { orders: ROUND.orders, rdp: ROUND.rdp.map((value, i) => (i === 0 ? 0 : value)) } });
    expect(store.entries(digest(0xd1))).toHaveLength(1);
  });
});

describe('the budget check', () => {
  it('allows a round that takes the spend exactly to the budget, and names both figures when it refuses', async () => {
    const store = await PrivacyBudgetStore.open(directory);
    const exact = store.check(digest(0xd1), ROUND, BUDGET).epsilonAfter;
    expect(store.check(digest(0xd1), ROUND, { epsilon: exact, delta: BUDGET.delta }).allowed).toBe(true);
    expect(store.check(digest(0xd1), ROUND, { epsilon: exact * (1 - 1e-12), delta: BUDGET.delta }).allowed).toBe(false);
    const error = await rejectedBy(FedgateError, store.spendWithinBudget(digest(0xd1), { taskHash: digest(0x7a), roundId: Uint8Array.of(1), curve: ROUND }, { epsilon: exact / 2, delta: BUDGET.delta }));
    expect(error).toMatchObject({ reason: 'PRIVACY_BUDGET_EXCEEDED', message: expect.stringContaining(`from epsilon 0.0000 to ${exact.toFixed(4)}, above the site's budget ${exact / 2} at delta 0.00001`) });
    expect(error.message).toContain(`dataset ${hex(0xd1).slice(0, 16)}...`);
  });

  it.each([
    ['no budget', null],
    ['epsilon 0', { epsilon: 0, delta: 1e-5 }],
    ['an infinite epsilon', { epsilon: Infinity, delta: 1e-5 }],
    ['delta 0', { epsilon: 1, delta: 0 }],
    ['delta 1', { epsilon: 1, delta: 1 }],
    ['a NaN delta', { epsilon: 1, delta: Number.NaN }],
  ])('refuses a budget with %s', async (_name, budget) => {
    const store = await PrivacyBudgetStore.open(directory);
    expect(() => store.check(digest(0xd1), ROUND, budget as typeof BUDGET)).toThrow(/the privacy budget must have epsilon > 0 and delta in \(0, 1\)/);
  });
});
