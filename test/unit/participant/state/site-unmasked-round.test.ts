/**
 * The round a site last unmasked in, kept in its state store (participant/state/site-state.ts) so that a
 * restarted site can still sign that round's commit when the coordinator asks again (one contribution per
 * model: the round is finished, never re-run) - and never a different commit than the one it signed. Only
 * public values are kept, and they are dropped once that round's record verified or a newer round is
 * accepted.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { unmaskedRound, type UnmaskedRound } from '../../../../crypto/secagg/commit-resign.js';
import { roundCounter } from '../../../../crypto/secagg/config.js';
import type { CommitHashes, CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { commitTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { verifyMessage } from '../../../../crypto/signature.js';
import { SiteChain } from '../../../../participant/chain/site-chain.js';
import { SITE_SECRET_FILE, SITE_STATE_FILE, SiteStateStore } from '../../../../participant/state/index.js';
import { unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation, testPolicy, type TestFederation } from '../../../support/secagg-sim.js';

const START = { counter: 0n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };
const SITE = 'unmasked-00';

let federation: TestFederation;
let record: CommitRecord;
let round: UnmaskedRound;
let directory: string;

beforeAll(() => {
  federation = cachedFederation(3, 'unmasked-');
  record = unsignedRecord({ previous: START, participants: federation.sites.map((site) => site.siteId), counter: 5n });
  round = unmaskedRound(SITE, record.config, record.keyListHash, record.maskedSurvivors);
}, 300_000);

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-unmasked-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const federationId = (): string => record.config.federationId;
const otherHashes = (): CommitHashes => ({ ...record.hashes, aggregateHash: sha256(utf8('another aggregate')), newModelHash: sha256(utf8('another model')) });

function request(hashes: CommitHashes = record.hashes): CommitRequestMessage {
  return { stage: 'commit_request', roundId: record.config.roundId, ...hashes };
}

/** The daemon's chain duties over `store`, recomputing whatever hashes a request names for its aggregate. */
function chainOver(store: SiteStateStore): SiteChain {
  return new SiteChain({
    siteId: SITE,
    signingKey: federation.site(SITE).privateKey,
    policy: testPolicy(),
    trust: () => federation.trust,
    store,
    unmaskedRounds: store,
    origin: async () => START,
    fetchRecords: async () => [],
    computeCommit: async (_config, asked) => ({ hashes: { previousModelHash: asked.previousModelHash, aggregateHash: asked.aggregateHash, newModelHash: asked.newModelHash, optimizerStateHash: asked.optimizerStateHash }, newModel: utf8('model r+1') }),
    logger: pino({ level: 'silent' }),
  });
}

describe('the round a site last unmasked in, in its state store', () => {
  it('survives a restart with public values only, and a restarted site signs that round\'s commit', async () => {
    const store = await SiteStateStore.open(directory);
    await store.acceptRoundCounter(federationId(), 5n);
    await chainOver(store).unmasked(round);
    const text = await readFile(join(directory, SITE_STATE_FILE), 'utf8');
    const kept = (JSON.parse(text) as { federations: { unmaskedRound?: Record<string, unknown> }[] }).federations[0]?.unmaskedRound;
    expect(Object.keys(kept ?? {}).sort()).toEqual(['keyListHash', 'maskedSurvivors', 'roundConfig', 'signed', 'siteId']);
    expect(kept?.['signed']).toBeNull();

    const restarted = chainOver(await SiteStateStore.open(directory));
    const signature = await restarted.lateCommit(request());
    expect(signature).toMatchObject({ stage: 'commit', ...record.hashes });
    const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
    expect(verifyMessage(federation.site(SITE).publicKey, transcript, signature?.signature as Uint8Array)).toBe(true);
    // What it signed is on disk: after another restart it signs the same commit again, and no other.
    const again = chainOver(await SiteStateStore.open(directory));
    expect(await again.lateCommit(request())).toMatchObject({ stage: 'commit' });
    await expect(again.lateCommit(request(otherHashes()))).rejects.toMatchObject({ reason: 'CONFLICTING_COMMIT' });
    // A request for any other round is not its business.
    expect(await again.lateCommit({ ...request(), roundId: new Uint8Array(24) })).toBeUndefined();
  });

  it('after a restart refuses any other commit than the one it signed in the live session', async () => {
    const store = await SiteStateStore.open(directory);
    const chain = chainOver(store);
    await chain.unmasked(round);
    await chain.commitSigned(record.config.roundId, otherHashes());
    const restarted = chainOver(await SiteStateStore.open(directory));
    await expect(restarted.lateCommit(request())).rejects.toMatchObject({ reason: 'CONFLICTING_COMMIT' });
    expect(await restarted.lateCommit(request(otherHashes()))).toMatchObject({ stage: 'commit' });
  });

  it('two concurrent requests for different commits of the round: one is signed, the other refused', async () => {
    const chain = chainOver(await SiteStateStore.open(directory));
    await chain.unmasked(round);
    const results = await Promise.allSettled([chain.lateCommit(request()), chain.lateCommit(request(otherHashes()))]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected']);
  });

  it('is dropped when a newer round is accepted, not for this round or an older one', async () => {
    const store = await SiteStateStore.open(directory);
    await store.acceptRoundCounter(federationId(), 4n);
    await store.keepUnmaskedRound(round);
    await store.acceptRoundCounter('another-federation', 9n);
    expect(store.unmaskedRound(record.config.roundId)).toBeDefined();
    await store.acceptRoundCounter(federationId(), 6n);
    expect(store.unmaskedRound(record.config.roundId)).toBeUndefined();
    expect((await SiteStateStore.open(directory)).unmaskedRound(record.config.roundId)).toBeUndefined();
  });

  it('keeps the commit it signed when the same round is kept again, and records a signature only for that round', async () => {
    const store = await SiteStateStore.open(directory);
    await store.acceptRoundCounter('a federation with no kept round', 1n);
    await store.keepUnmaskedRound(round);
    await store.keepCommitSigned(new Uint8Array(24), record.hashes);
    expect(store.unmaskedRound(record.config.roundId)?.signed).toBeUndefined();
    await store.keepCommitSigned(record.config.roundId, record.hashes);
    await store.keepUnmaskedRound(round);
    expect(store.unmaskedRound(record.config.roundId)?.signed).toEqual(record.hashes);
    expect((await SiteStateStore.open(directory)).unmaskedRound(record.config.roundId)?.signed).toEqual(record.hashes);
  });

  it('is dropped once the chain head reaches that round (its record verified), not before', async () => {
    const store = await SiteStateStore.open(directory);
    await store.keepUnmaskedRound(round);
    const head = (counter: bigint): { counter: bigint; modelHash: Uint8Array; optimizerStateHash: Uint8Array; recordHash: Uint8Array } => ({
      counter,
      modelHash: sha256(utf8(`model ${counter}`)),
      optimizerStateHash: TEST_OPTIMIZER_HASH,
      recordHash: sha256(utf8(`record ${counter}`)),
    });
    await store.setChainHead(federationId(), head(4n));
    expect(store.unmaskedRound(record.config.roundId)).toBeDefined();
    await store.setChainHead(federationId(), head(roundCounter(record.config.roundId)));
    expect(store.unmaskedRound(record.config.roundId)).toBeUndefined();
    expect((await SiteStateStore.open(directory)).unmaskedRound(record.config.roundId)).toBeUndefined();
  });

  it('keeps what it had, in memory and on disk, when it crashes between writing and renaming', async () => {
    const crashing = await SiteStateStore.open(directory, {
      beforeRename: () => {
        throw new Error('simulated crash before rename');
      },
    });
    await expect(chainOver(crashing).unmasked(round)).rejects.toThrow('simulated crash before rename');
    expect(crashing.unmaskedRound(record.config.roundId)).toBeUndefined();
    expect((await SiteStateStore.open(directory)).unmaskedRound(record.config.roundId)).toBeUndefined();
    expect((await readdir(directory)).sort()).toEqual([SITE_SECRET_FILE].sort());
  });

  /** The state file `text` with federation 0's kept round replaced by `change(kept)`. */
  function keptAs(text: string, change: (kept: Record<string, unknown>) => unknown): string {
    const state = JSON.parse(text) as { federations: Record<string, unknown>[] };
    const federation = state.federations[0] as Record<string, unknown>;
    federation['unmaskedRound'] = change(federation['unmaskedRound'] as Record<string, unknown>);
    return JSON.stringify(state, null, 1);
  }
  const hexHashes = (): Record<string, string> => Object.fromEntries(Object.entries(record.hashes).map(([field, value]) => [field, toHex(value as Uint8Array)]));

  it('a damaged kept round is an error naming the file, never silently forgotten', async () => {
    const store = await SiteStateStore.open(directory);
    await store.keepUnmaskedRound(round);
    const path = join(directory, SITE_STATE_FILE);
    const original = await readFile(path, 'utf8');
    const damages: [string, (text: string) => string, RegExp][] = [
      ['a RoundConfig that does not decode', (text) => text.replace(/"roundConfig": "[^"]+"/, '"roundConfig": "AAAA"'), /unmaskedRound\.roundConfig does not decode/],
      ['a key list hash that is no digest', (text) => text.replace(`"keyListHash": "${toHex(record.keyListHash)}"`, '"keyListHash": "00"'), /unmaskedRound\.keyListHash must be/],
      ['signed hashes that are no digests', (text) => text.replace('"signed": null', '"signed": {"aggregateHash": "00"}'), /unmaskedRound\.signed must hold the four commit hashes/],
      ['three of the four signed hashes', (text) => text.replace('"signed": null', `"signed": ${JSON.stringify({ ...hexHashes(), newModelHash: undefined })}`), /unmaskedRound\.signed must hold the four commit hashes/],
      ['a kept round that is null', (text) => keptAs(text, () => null), /unmaskedRound must hold siteId and roundConfig/],
      ['a kept round that is a string', (text) => keptAs(text, () => 'round'), /unmaskedRound must hold siteId and roundConfig/],
      ['a numeric site id', (text) => keptAs(text, (kept) => ({ ...kept, siteId: 7 })), /unmaskedRound must hold siteId and roundConfig/],
      ['no site id', (text) => keptAs(text, (kept) => ({ ...kept, siteId: undefined })), /unmaskedRound must hold siteId and roundConfig/],
      ['a RoundConfig as an array of bytes', (text) => keptAs(text, (kept) => ({ ...kept, roundConfig: [1, 2, 3] })), /unmaskedRound must hold siteId and roundConfig/],
      ['a RoundConfig of another federation', (text) => text.split(`"federationId": ${JSON.stringify(federationId())}`).join('"federationId": "another-federation"'), /unmaskedRound\.roundConfig is of federation/],
      ['survivors that are not a list', (text) => keptAs(text, (kept) => ({ ...kept, maskedSurvivors: 'unmasked-00' })), /unmaskedRound\.maskedSurvivors must be a list of site ids/],
      ['a survivor that is a number', (text) => keptAs(text, (kept) => ({ ...kept, maskedSurvivors: [...(kept['maskedSurvivors'] as string[]), 7] })), /unmaskedRound\.maskedSurvivors must be a list of site ids/],
    ];
    for (const [what, damage, message] of damages) {
      const damaged = damage(original);
      expect(damaged, what).not.toBe(original);
      await writeFile(path, damaged);
      await expect(SiteStateStore.open(directory), what).rejects.toMatchObject({ code: 'DATA_LOSS', reason: 'SITE_STATE_CORRUPT', message: expect.stringMatching(message) as unknown });
    }
  });
});
