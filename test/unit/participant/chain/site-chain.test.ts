/**
 * The daemon's chain duties (participant/chain/site-chain.ts): its policy before the chain at RoundStart
 * (so policy refusals keep their reasons), and the commit of the round it last unmasked in, signed when
 * the coordinator asks again after the site lost that round's session - only for that round, only over
 * the hashes the site recomputes, and never over two different commits.
 */
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { unmaskedRound } from '../../../../crypto/secagg/commit-resign.js';
import type { CommitHashes, CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { commitTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { verifyMessage } from '../../../../crypto/signature.js';
import { MemoryChainHeads } from '../../../../participant/chain/chain-follower.js';
import { SiteChain } from '../../../../participant/chain/site-chain.js';
import { headAfter, honestRecord, recordBytes, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation, testPolicy, type TestFederation } from '../../../support/secagg-sim.js';

const START = { counter: 0n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };
let federation: TestFederation;
let record: CommitRecord;
/** What the site recomputes from the aggregate a request names (here: the record's own hashes). */
let computedFor: (request: CommitRequestMessage) => CommitHashes;

beforeAll(() => {
  federation = cachedFederation(3, 'site-chain-');
  record = unsignedRecord({ previous: START, participants: federation.sites.map((site) => site.siteId) });
  computedFor = (request) => (request.aggregateHash.every((byte, index) => byte === record.hashes.aggregateHash[index]) ? record.hashes : { ...record.hashes, aggregateHash: request.aggregateHash, newModelHash: sha256(utf8('other model')) });
}, 300_000);

function siteChain(siteId = 'site-chain-00'): SiteChain {
  const site = federation.site(siteId);
  return new SiteChain({
    siteId,
    signingKey: site.privateKey,
    policy: testPolicy(),
    trust: () => federation.trust,
    store: new MemoryChainHeads(),
    origin: async () => START,
    fetchRecords: async () => [],
    computeCommit: async (_config, request) => ({ hashes: computedFor(request), newModel: utf8('model r+1') }),
    logger: pino({ level: 'silent' }),
  });
}

function request(hashes: CommitHashes = record.hashes): CommitRequestMessage {
  return { stage: 'commit_request', roundId: record.config.roundId, ...hashes };
}

describe('SiteChain', () => {
  it('refuses by its policy before looking at the chain', async () => {
    const chain = siteChain();
    await expect(chain.checkRound({ ...record.config, plaintext: true })).rejects.toMatchObject({ reason: 'PLAINTEXT_NOT_ALLOWED' });
    await expect(chain.checkRound({ ...record.config, modelHash: sha256(utf8('trap')) })).rejects.toMatchObject({ reason: 'MODEL_NOT_CHAIN_HEAD' });
    await expect(chain.checkRound(record.config)).resolves.toBeUndefined();
  });

  it('signs the commit of the round it last unmasked in, once it lost that round\'s session', async () => {
    const chain = siteChain();
    expect(await chain.lateCommit(request())).toBeUndefined();
    await chain.unmasked(unmaskedRound('site-chain-00', record.config, record.keyListHash, record.maskedSurvivors));
    const signature = await chain.lateCommit(request());
    expect(signature).toMatchObject({ stage: 'commit', ...record.hashes });
    const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
    expect(verifyMessage(federation.site('site-chain-00').publicKey, transcript, signature?.signature as Uint8Array)).toBe(true);
    expect(chain.lateComputation(record.config.roundId)?.hashes).toEqual(record.hashes);
    // Asked again for the same commit: signed again; asked for another aggregate of the round: refused.
    expect(await chain.lateCommit(request())).toMatchObject({ stage: 'commit' });
    const other = computedFor(request({ ...record.hashes, aggregateHash: sha256(utf8('another aggregate')) }));
    await expect(chain.lateCommit(request(other))).rejects.toMatchObject({ reason: 'CONFLICTING_COMMIT' });
  });

  it('refuses another commit than the one it signed in the live session', async () => {
    const chain = siteChain();
    await chain.unmasked(unmaskedRound('site-chain-00', record.config, record.keyListHash, record.maskedSurvivors));
    await chain.commitSigned(record.config.roundId, { ...record.hashes, newModelHash: sha256(utf8('signed live')) });
    await expect(chain.lateCommit(request())).rejects.toMatchObject({ reason: 'CONFLICTING_COMMIT' });
  });

  it('keeps the commit it signed when the same round is kept again: a repeated Unmask does not let it sign a second commit', async () => {
    const chain = siteChain();
    const round = unmaskedRound('site-chain-00', record.config, record.keyListHash, record.maskedSurvivors);
    await chain.unmasked(round);
    await chain.commitSigned(record.config.roundId, { ...record.hashes, newModelHash: sha256(utf8('signed live')) });
    await chain.unmasked(round);
    await expect(chain.lateCommit(request())).rejects.toMatchObject({ reason: 'CONFLICTING_COMMIT' });
  });

  it("keeps what it signed per round: a commit signed live in another round does not bind this round's late commit", async () => {
    const chain = siteChain();
    await chain.unmasked(unmaskedRound('site-chain-00', record.config, record.keyListHash, record.maskedSurvivors));
    const otherRound = new Uint8Array(record.config.roundId);
    otherRound[23] = (otherRound[23] as number) ^ 1;
    await expect(chain.commitSigned(otherRound, { ...record.hashes, newModelHash: sha256(utf8('signed in another round')) })).resolves.toBeUndefined();
    expect(await chain.lateCommit(request())).toMatchObject({ stage: 'commit', ...record.hashes });
    expect(chain.lateComputation(record.config.roundId)?.hashes).toEqual(record.hashes);
    expect(chain.lateComputation(otherRound)).toBeUndefined();
  });

  it('takes a signed commit or a question about a late commit before it unmasked in any round', async () => {
    const chain = siteChain();
    await expect(chain.commitSigned(record.config.roundId, record.hashes)).resolves.toBeUndefined();
    expect(chain.lateComputation(record.config.roundId)).toBeUndefined();
    expect(await chain.lateCommit(request())).toBeUndefined();
  });

  it('forwards RoundCommitted to its chain follower: a valid link moves the head, anything else does not', async () => {
    const chain = siteChain();
    expect(await chain.committed(utf8('not a commit record'))).toBe(false);
    const honest = honestRecord(federation, { previous: START, participants: federation.sites.map((site) => site.siteId) });
    expect(await chain.committed(recordBytes(honest))).toBe(true);
    await expect(chain.checkRound(unsignedRecord({ previous: headAfter(honest), participants: federation.sites.map((site) => site.siteId) }).config)).resolves.toBeUndefined();
  });

  it('ignores a request for any other round', async () => {
    const chain = siteChain();
    await chain.unmasked(unmaskedRound('site-chain-00', record.config, record.keyListHash, record.maskedSurvivors));
    expect(await chain.lateCommit({ ...request(), roundId: new Uint8Array(24) })).toBeUndefined();
  });
});
