/**
 * The site state file as the store writes and reads it. A damaged file must be an error naming what is
 * wrong, never read as "nothing accepted yet": a site that forgot its counters and contributions would
 * accept replayed rounds and contribute twice on one model. Each row damages one field of a file the
 * store wrote itself.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SITE_STATE_FILE, SiteStateStore } from '../../../../participant/state/index.js';
import { FedgateError } from '../../../../platform/index.js';
import { rejectedBy } from '../../../support/thrown.js';

const digest = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const hex = (byte: number): string => Buffer.from(digest(byte)).toString('hex');

type StateFile = { formatVersion: unknown; federations: Record<string, unknown>[] };

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-site-state-file-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A state file the store wrote: three federations, contributions, evaluations and a chain head. */
async function writtenState(): Promise<StateFile> {
  const store = await SiteStateStore.open(directory);
  // Out of id order (c, a, b), so that the written order is the sort's and not the insertion's.
  await store.acceptRoundCounter('fed-c', 1n);
  await store.acceptRoundCounter('fed-a', 4n);
  await store.acceptRoundCounter('fed-b', 9n);
  await store.recordContribution('fed-a', digest(7));
  await store.recordContribution('fed-a', digest(2));
  await store.recordEvaluation('fed-a', digest(5));
  await store.recordEvaluation('fed-a', digest(3));
  await store.setChainHead('fed-a', { counter: 3n, modelHash: digest(2), optimizerStateHash: digest(8), recordHash: digest(9) });
  return JSON.parse(await readFile(join(directory, SITE_STATE_FILE), 'utf8')) as StateFile;
}

async function reopenWith(text: string): Promise<SiteStateStore> {
  await writeFile(join(directory, SITE_STATE_FILE), text);
  return SiteStateStore.open(directory);
}

describe('the site state file', () => {
  it('is written in one canonical order: federations by id, digests sorted, counters as decimal text', async () => {
    const state = await writtenState();
    expect(state.formatVersion).toBe(1);
    expect(state.federations.map((item) => item['federationId'])).toEqual(['fed-a', 'fed-b', 'fed-c']);
    expect(state.federations[0]).toEqual({
      federationId: 'fed-a',
      highestRoundCounter: '4',
      contributedModels: [hex(2), hex(7)],
      evaluatedModels: [hex(3), hex(5)],
      chainHead: { counter: '3', modelHash: hex(2), optimizerStateHash: hex(8), recordHash: hex(9) },
    });
    expect(state.federations[1]).toMatchObject({ federationId: 'fed-b', highestRoundCounter: '9', contributedModels: [], evaluatedModels: [], chainHead: null });
  });

  it('reads back what it wrote: counters, contributions, evaluations and the chain head', async () => {
    await writtenState();
    const store = await SiteStateStore.open(directory);
    expect(store.highestRoundCounter('fed-a')).toBe(4n);
    expect(store.highestRoundCounter('fed-b')).toBe(9n);
    expect(store.hasContributed('fed-a', digest(7))).toBe(true);
    expect(store.hasContributed('fed-a', digest(5))).toBe(false);
    expect(store.hasEvaluated('fed-a', digest(5))).toBe(true);
    expect(store.hasEvaluated('fed-a', digest(7))).toBe(false);
    expect(store.hasEvaluated('fed-c', digest(5))).toBe(false);
    expect(store.chainHead('fed-a')).toEqual({ counter: 3n, modelHash: digest(2), optimizerStateHash: digest(8), recordHash: digest(9) });
    expect(store.chainHead('fed-b')).toBeUndefined();
    expect(store.chainHead('fed-c')).toBeUndefined();
  });

  it('reads a file written before evaluation-only rounds existed (no evaluatedModels) as nothing evaluated', async () => {
    const state = await writtenState();
    delete state.federations[0]!['evaluatedModels'];
    const store = await reopenWith(JSON.stringify(state));
    expect(store.hasEvaluated('fed-a', digest(5))).toBe(false);
    expect(store.hasContributed('fed-a', digest(7))).toBe(true);
  });

  it('takes the largest counter, 2^64 - 1, and a chain head at the initial model (counter 0, no record hash)', async () => {
    const state = await writtenState();
    Object.assign(state.federations[0]!, { highestRoundCounter: '18446744073709551615', chainHead: { counter: '0', modelHash: hex(1), optimizerStateHash: hex(1), recordHash: '' } });
    const store = await reopenWith(JSON.stringify(state));
    expect(store.highestRoundCounter('fed-a')).toBe(2n ** 64n - 1n);
    expect(store.chainHead('fed-a')).toEqual({ counter: 0n, modelHash: digest(1), optimizerStateHash: digest(1), recordHash: new Uint8Array(0) });
  });

  const damage: [string, (state: StateFile) => unknown, string][] = [
    ['JSON null', () => null, 'is not a JSON object'],
    ['a JSON string', () => 'state', 'is not a JSON object'],
    ['no federations list', (state) => ({ formatVersion: state.formatVersion }), 'has no federations list'],
    ['a federation that is null', (state) => ({ ...state, federations: [null] }), 'federations[0].federationId is missing'],
    ['a federation without an id', (state) => ({ ...state, federations: [{ ...state.federations[0], federationId: undefined }] }), 'federations[0].federationId is missing'],
    ['an empty federation id', (state) => ({ ...state, federations: [{ ...state.federations[0], federationId: '' }] }), 'federations[0].federationId is missing'],
    ['a numeric federation id', (state) => ({ ...state, federations: [{ ...state.federations[0], federationId: 7 }] }), 'federations[0].federationId is missing'],
    ['a federation listed twice', (state) => ({ ...state, federations: [state.federations[0], state.federations[0]] }), 'federations[1] repeats federation "fed-a"'],
    ['a counter as a number', (state) => edit(state, { highestRoundCounter: 4 }), 'federations[0].highestRoundCounter must be a decimal round counter'],
    ['a counter with a leading zero', (state) => edit(state, { highestRoundCounter: '04' }), 'federations[0].highestRoundCounter must be a decimal round counter'],
    ['a counter with a sign', (state) => edit(state, { highestRoundCounter: '+4' }), 'federations[0].highestRoundCounter must be a decimal round counter'],
    ['a counter with text after it', (state) => edit(state, { highestRoundCounter: '4 rounds' }), 'federations[0].highestRoundCounter must be a decimal round counter'],
    ['a counter of 2^64', (state) => edit(state, { highestRoundCounter: '18446744073709551616' }), 'federations[0].highestRoundCounter is above 2^64'],
    ['a counter of 21 digits', (state) => edit(state, { highestRoundCounter: '100000000000000000000' }), 'federations[0].highestRoundCounter must be a decimal round counter'],
    ['contributions that are not a list', (state) => edit(state, { contributedModels: hex(2) }), 'federations[0].contributedModels must be a list of 64-character hex digests'],
    ['a contribution in upper-case hex', (state) => edit(state, { contributedModels: [hex(0xab).toUpperCase()] }), 'federations[0].contributedModels must be'],
    ['a contribution one digit short', (state) => edit(state, { contributedModels: [hex(2).slice(1)] }), 'federations[0].contributedModels must be'],
    ['a contribution with a prefix', (state) => edit(state, { contributedModels: [`g${hex(2)}`] }), 'federations[0].contributedModels must be'],
    ['a contribution wrapped in a list', (state) => edit(state, { contributedModels: [[hex(2)]] }), 'federations[0].contributedModels must be'],
    ['a contribution with a trailing newline', (state) => edit(state, { contributedModels: [`${hex(2)}\n`] }), 'federations[0].contributedModels must be'],
    ['evaluations that are not a list', (state) => edit(state, { evaluatedModels: {} }), 'federations[0].evaluatedModels must be a list of 64-character hex digests'],
    ['an evaluation that is not hex', (state) => edit(state, { evaluatedModels: ['z'.repeat(64)] }), 'federations[0].evaluatedModels must be'],
    ['a chain head without a model hash', (state) => edit(state, { chainHead: { counter: '3', optimizerStateHash: hex(8), recordHash: hex(9) } }), 'federations[0].chainHead must hold hex digests'],
    ['a chain head without an optimiser-state hash', (state) => edit(state, { chainHead: { counter: '3', modelHash: hex(2), recordHash: hex(9) } }), 'federations[0].chainHead must hold hex digests'],
    ['a chain head with a short record hash', (state) => edit(state, { chainHead: { counter: '3', modelHash: hex(2), optimizerStateHash: hex(8), recordHash: 'ab' } }), 'federations[0].chainHead must hold hex digests'],
    ['a chain head at counter -1', (state) => edit(state, { chainHead: { counter: '-1', modelHash: hex(2), optimizerStateHash: hex(8), recordHash: hex(9) } }), 'federations[0].chainHead.counter must be a decimal round counter'],
  ];

  it.each(damage)('refuses %s, naming the field and saying to restore it', async (_name, change, text) => {
    const state = await writtenState();
    const error = await rejectedBy(FedgateError, reopenWith(JSON.stringify(change(state))));
    expect(error).toMatchObject({ code: 'DATA_LOSS', reason: 'SITE_STATE_CORRUPT' });
    const message = error.message;
    expect(message).toContain(`the site state file ${join(directory, SITE_STATE_FILE)} `);
    expect(message).toContain(text);
    expect(message).toContain('restore it from a backup');
  });

  it('refuses text that is not JSON, quoting the parser', async () => {
    await writtenState();
    await expect(reopenWith('{"formatVersion": 1, "federations": [')).rejects.toMatchObject({ reason: 'SITE_STATE_CORRUPT', message: expect.stringMatching(/is not JSON \(.+\)/) });
  });

  it('refuses a file of another format version, saying which release to run', async () => {
    const state = await writtenState();
    await expect(reopenWith(JSON.stringify({ ...state, formatVersion: 2 }))).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      reason: 'SITE_STATE_VERSION',
      message: expect.stringContaining('has format version 2; this fedgate reads version 1'),
    });
  });
});

describe('the state store', () => {
  it('remembers every model whose evaluation was unmasked, per federation, across a restart', async () => {
    const store = await SiteStateStore.open(directory);
    expect(store.hasEvaluated('fed-a', digest(1))).toBe(false);
    await store.recordEvaluation('fed-a', digest(1));
    expect(store.hasEvaluated('fed-a', digest(1))).toBe(true);
    expect(store.hasEvaluated('fed-b', digest(1))).toBe(false);
    expect(store.hasContributed('fed-a', digest(1))).toBe(false);
    expect((await SiteStateStore.open(directory)).hasEvaluated('fed-a', digest(1))).toBe(true);
  });

  it('sets the chain head again at the same counter, and refuses an older one naming both', async () => {
    const store = await SiteStateStore.open(directory);
    await store.setChainHead('fed-a', { counter: 5n, modelHash: digest(1), optimizerStateHash: digest(2), recordHash: digest(3) });
    await store.setChainHead('fed-a', { counter: 5n, modelHash: digest(1), optimizerStateHash: digest(2), recordHash: digest(3) });
    await expect(store.setChainHead('fed-a', { counter: 4n, modelHash: digest(1), optimizerStateHash: digest(2), recordHash: digest(3) })).rejects.toMatchObject({
      reason: 'CHAIN_HEAD_BEHIND',
      message: 'chain head cannot move back from round 5 to 4',
    });
  });

  it('says which counter a replay names and which it accepted', async () => {
    const store = await SiteStateStore.open(directory);
    await store.acceptRoundCounter('fed-a', 8n);
    await expect(store.acceptRoundCounter('fed-a', 6n)).rejects.toMatchObject({ message: expect.stringContaining('round counter 6 is not above 8, the highest this site accepted') });
  });

  it('refuses a site secret of the wrong size, saying how long it is', async () => {
    await SiteStateStore.open(directory);
    await writeFile(join(directory, 'site-secret.key'), new Uint8Array(31));
    await expect(SiteStateStore.open(directory)).rejects.toMatchObject({ reason: 'SITE_STATE_CORRUPT', message: expect.stringContaining('holds 31 bytes, a site secret is 32') });
  });
});

function edit(state: StateFile, change: Record<string, unknown>): StateFile {
  return { ...state, federations: [{ ...state.federations[0], ...change }, ...state.federations.slice(1)] };
}
