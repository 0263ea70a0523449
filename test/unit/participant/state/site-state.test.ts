import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SITE_SECRET_FILE, SITE_STATE_FILE, SiteStateStore } from '../../../../participant/state/index.js';

const FEDERATION = 'fed-a';
const digest = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

describe('the site state store', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'fedgate-site-state-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('accepts only round counters above the highest it accepted, across a restart', async () => {
    const store = await SiteStateStore.open(directory);
    expect(store.highestRoundCounter(FEDERATION)).toBeUndefined();
    await store.acceptRoundCounter(FEDERATION, 0n);
    await store.acceptRoundCounter(FEDERATION, 5n);
    await expect(store.acceptRoundCounter(FEDERATION, 5n)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'ROUND_NOT_FRESH' });
    await expect(store.acceptRoundCounter(FEDERATION, 4n)).rejects.toMatchObject({ reason: 'ROUND_NOT_FRESH' });
    // Counters are per federation.
    await store.acceptRoundCounter('fed-b', 1n);
    const reopened = await SiteStateStore.open(directory);
    expect(reopened.highestRoundCounter(FEDERATION)).toBe(5n);
    await expect(reopened.acceptRoundCounter(FEDERATION, 5n)).rejects.toMatchObject({ reason: 'ROUND_NOT_FRESH' });
    await reopened.acceptRoundCounter(FEDERATION, 2n ** 64n - 1n);
    expect((await SiteStateStore.open(directory)).highestRoundCounter(FEDERATION)).toBe(2n ** 64n - 1n);
  });

  it('keeps the old counter, in memory and on disk, when it crashes between writing and renaming', async () => {
    const store = await SiteStateStore.open(directory);
    await store.acceptRoundCounter(FEDERATION, 3n);
    const crashing = await SiteStateStore.open(directory, {
      beforeRename: () => {
        throw new Error('simulated crash before rename');
      },
    });
    await expect(crashing.acceptRoundCounter(FEDERATION, 4n)).rejects.toThrow('simulated crash before rename');
    expect(crashing.highestRoundCounter(FEDERATION)).toBe(3n);
    expect((await SiteStateStore.open(directory)).highestRoundCounter(FEDERATION)).toBe(3n);
    expect((await readdir(directory)).sort()).toEqual([SITE_SECRET_FILE, SITE_STATE_FILE].sort());
  });

  it('remembers every model its input was unmasked on', async () => {
    const store = await SiteStateStore.open(directory);
    expect(store.hasContributed(FEDERATION, digest(1))).toBe(false);
    await store.recordContribution(FEDERATION, digest(1));
    expect(store.hasContributed(FEDERATION, digest(1))).toBe(true);
    expect(store.hasContributed(FEDERATION, digest(2))).toBe(false);
    expect(store.hasContributed('fed-b', digest(1))).toBe(false);
    expect((await SiteStateStore.open(directory)).hasContributed(FEDERATION, digest(1))).toBe(true);
  });

  it('keeps the verified chain head and never moves it back', async () => {
    const store = await SiteStateStore.open(directory);
    const head = { counter: 7n, modelHash: digest(3), optimizerStateHash: digest(4), recordHash: digest(5) };
    await store.setChainHead(FEDERATION, head);
    await expect(store.setChainHead(FEDERATION, { ...head, counter: 6n })).rejects.toMatchObject({ reason: 'CHAIN_HEAD_BEHIND' });
    const reopened = (await SiteStateStore.open(directory)).chainHead(FEDERATION);
    expect(reopened).toEqual(head);
    // The initial model has no record.
    await store.setChainHead('fed-b', { counter: 0n, modelHash: digest(9), optimizerStateHash: digest(8), recordHash: new Uint8Array(0) });
    expect((await SiteStateStore.open(directory)).chainHead('fed-b')?.recordHash).toEqual(new Uint8Array(0));
  });

  it('seeds local randomness from a private site secret: per round, per purpose, per site', async () => {
    const store = await SiteStateStore.open(directory);
    const round = digest(1).subarray(0, 24);
    const other = digest(2).subarray(0, 24);
    expect(store.roundSeed(round, 'shuffle')).toHaveLength(32);
    expect(store.roundSeed(round, 'shuffle')).toEqual(store.roundSeed(round, 'shuffle'));
    expect(store.roundSeed(round, 'shuffle')).not.toEqual(store.roundSeed(other, 'shuffle'));
    expect(store.roundSeed(round, 'shuffle')).not.toEqual(store.roundSeed(round, 'dropout'));
    expect((await SiteStateStore.open(directory)).roundSeed(round, 'shuffle')).toEqual(store.roundSeed(round, 'shuffle'));
    const otherSite = await mkdtemp(join(tmpdir(), 'fedgate-site-state-'));
    try {
      expect((await SiteStateStore.open(otherSite)).roundSeed(round, 'shuffle')).not.toEqual(store.roundSeed(round, 'shuffle'));
    } finally {
      await rm(otherSite, { recursive: true, force: true });
    }
    expect((await stat(join(directory, SITE_SECRET_FILE))).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['not JSON', '{', 'SITE_STATE_CORRUPT'],
    ['another format version', JSON.stringify({ formatVersion: 99, federations: [] }), 'SITE_STATE_VERSION'],
    ['a counter that is not a decimal', JSON.stringify({ formatVersion: 1, federations: [{ federationId: 'f', highestRoundCounter: 12, contributedModels: [], chainHead: null }] }), 'SITE_STATE_CORRUPT'],
    ['a malformed model digest', JSON.stringify({ formatVersion: 1, federations: [{ federationId: 'f', highestRoundCounter: '1', contributedModels: ['xyz'], chainHead: null }] }), 'SITE_STATE_CORRUPT'],
    ['a repeated federation', JSON.stringify({ formatVersion: 1, federations: [1, 2].map(() => ({ federationId: 'f', highestRoundCounter: '1', contributedModels: [], chainHead: null })) }), 'SITE_STATE_CORRUPT'],
  ])('refuses a state file with %s, naming the file (never resets it)', async (_case, content, reason) => {
    await writeFile(join(directory, SITE_STATE_FILE), content);
    await expect(SiteStateStore.open(directory)).rejects.toMatchObject({ reason, message: expect.stringContaining(join(directory, SITE_STATE_FILE)) as unknown });
    expect(await readFile(join(directory, SITE_STATE_FILE), 'utf8')).toBe(content);
  });

  it('refuses a site secret of the wrong size', async () => {
    await writeFile(join(directory, SITE_SECRET_FILE), new Uint8Array(5));
    await expect(SiteStateStore.open(directory)).rejects.toMatchObject({ reason: 'SITE_STATE_CORRUPT' });
  });
});
