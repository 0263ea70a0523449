/**
 * The site's commit check (DESIGN.md step 7) in the pure client: a site signs a commit only when the
 * coordinator's request names exactly the hashes the site computed itself, and only when the previous
 * model is the one its RoundConfig named. Each case below is refused by exactly one of those checks,
 * so deleting either check makes a case fail. The coordinator here is the liar.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { encodeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import type { CommitHashes, CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import { COMMIT_HASH_FIELDS, sameCommitHashes } from '../../../../crypto/secagg/commit-hashes.js';
import { RoundDriver, cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let driver: RoundDriver;
let honest: CommitHashes;
/** Sites at the commit stage, one used up per case (a refused commit ends the site's round). */
const unused: string[] = [];

// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(9, 'cmt-');
  const config = testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: 8, parameters: 16 });
  driver = new RoundDriver({ federation, config });
  const aggregate = driver.unmask(driver.signConsistency(driver.maskInputs(driver.dealShares(driver.revealNonces(driver.advertise())))));
  expect(driver.refusals.size).toBe(0);
  honest = {
    previousModelHash: config.modelHash,
    aggregateHash: sha256(encodeAggregate(aggregate.sum)),
    newModelHash: sha256(utf8('model r+1 as every site computes it')),
    optimizerStateHash: sha256(utf8('optimiser state r+1 as every site computes it')),
  };
  unused.push(...aggregate.maskedSurvivors);
}, 300_000);

function nextSite(): string {
  const siteId = unused.shift();
  if (siteId === undefined) throw new Error('the test round has no unused site left');
  return siteId;
}

function requestFor(hashes: CommitHashes): CommitRequestMessage {
  return { stage: 'commit_request', roundId: driver.config.roundId, ...hashes };
}

const otherDigest = sha256(utf8('a hash this site did not compute'));

describe('SecAggClient.commit', () => {
  it('signs when the request names the hashes the site computed', () => {
    const siteId = nextSite();
    const request = driver.server.beginCommit(honest);
    const signature = driver.client(siteId).commit(request, honest);
    expect(signature).toMatchObject({ stage: 'commit', ...honest });
    expect(() => driver.server.receive(siteId, signature)).not.toThrow();
  });

  it.each(COMMIT_HASH_FIELDS)('refuses a request whose %s differs from what the site computed, and leaves the round', (field) => {
    const siteId = nextSite();
    const client = driver.client(siteId);
    // For the previous model the request stays on RoundConfig's model (so only the comparison can
    // refuse it) and the site is the one that computed from another model.
    const request = requestFor(field === 'previousModelHash' ? honest : { ...honest, [field]: otherDigest });
    const computed = field === 'previousModelHash' ? { ...honest, previousModelHash: otherDigest } : honest;
    expect(() => client.commit(request, computed)).toThrow(
      expect.objectContaining({ name: 'SecAggError', code: 'FAILED_PRECONDITION', reason: 'COMMIT_MISMATCH', message: expect.stringContaining(`commit_request.${field}`) as unknown }),
    );
    expect(client.phase).toBe('failed');
    expect(() => client.commit(requestFor(honest), honest)).toThrow(expect.objectContaining({ reason: 'COMMIT_MISMATCH' }));
  });

  it('refuses a previous model hash that is not RoundConfig.modelHash, even when the site computed the same', () => {
    const siteId = nextSite();
    const client = driver.client(siteId);
    const moved = { ...honest, previousModelHash: otherDigest };
    expect(() => client.commit(requestFor(moved), moved)).toThrow(expect.objectContaining({ code: 'FAILED_PRECONDITION', reason: 'MODEL_HASH_MISMATCH' }));
    expect(client.phase).toBe('failed');
  });

  it('refuses computed hashes that are not 32-byte digests', () => {
    const siteId = nextSite();
    expect(() => driver.client(siteId).commit(requestFor(honest), { ...honest, newModelHash: new Uint8Array(31) })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' }),
    );
  });

  it('refuses a replayed request with a malformed hash as a different commit, not as an internal error', () => {
    const siteId = nextSite();
    const client = driver.client(siteId);
    const request = requestFor(honest);
    const signature = client.commit(request, honest);
    expect(client.commit(request, honest)).toBe(signature);
    const malformed = { ...request, aggregateHash: [...honest.aggregateHash] as unknown as Uint8Array };
    expect(() => client.commit(malformed, honest)).toThrow(expect.objectContaining({ code: 'FAILED_PRECONDITION', reason: 'CONFLICTING_COMMIT' }));
  });

  it('names the malformed field and the stage, and says which model the previous hash must be', () => {
    const siteId = nextSite();
    expect(() => driver.client(siteId).commit(requestFor({ ...honest, optimizerStateHash: new Uint8Array(33) }), honest)).toThrow(
      expect.objectContaining({ reason: 'MALFORMED_MESSAGE', message: `commit_request.optimizerStateHash must be a 32-byte SHA-256 digest (stage commit, site "${siteId}")` }),
    );
  });
});

describe('sameCommitHashes', () => {
  it('is false, never an error, when either side holds a field that is not bytes', () => {
    const bytesLike = { ...honest, newModelHash: [...honest.newModelHash] as unknown as Uint8Array };
    expect(sameCommitHashes(honest, { ...honest })).toBe(true);
    expect(sameCommitHashes(bytesLike, honest)).toBe(false);
    expect(sameCommitHashes(honest, bytesLike)).toBe(false);
    expect(sameCommitHashes(honest, { ...honest, aggregateHash: undefined as unknown as Uint8Array })).toBe(false);
  });
});
