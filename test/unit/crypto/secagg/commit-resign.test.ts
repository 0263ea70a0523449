/**
 * Signing the commit of a round a site unmasked in, after its live round state is gone
 * (crypto/secagg/commit-resign.ts): the coordinator finishes such a round rather than re-run it, and asks
 * U3 again. The signature must be the one the live client makes (it verifies as a link of the chain), and
 * every check of the live client's commit holds: the site's own hashes, the round's model, one commit per
 * round. The coordinator is the liar in every refusal below.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { verifyCommitLink } from '../../../../crypto/secagg/commit-chain.js';
import { signUnmaskedRoundCommit, unmaskedRound, type UnmaskedRound } from '../../../../crypto/secagg/commit-resign.js';
import type { CommitHashes, CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { COMMITTED_AT, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, TEST_TASK_HASH, cachedFederation, testPolicy, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let record: CommitRecord;
const START = { counter: 0n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };

beforeAll(() => {
  federation = cachedFederation(4, 'late-');
  record = unsignedRecord({ previous: START, participants: federation.sites.map((site) => site.siteId) });
}, 300_000);

function roundOf(siteId: string): UnmaskedRound {
  return unmaskedRound(siteId, record.config, record.keyListHash, [...record.maskedSurvivors].reverse());
}

function request(hashes: CommitHashes = record.hashes): CommitRequestMessage {
  return { stage: 'commit_request', roundId: record.config.roundId, ...hashes };
}

function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as { reason: string }).reason;
  }
  return 'SIGNED';
}

describe('signUnmaskedRoundCommit', () => {
  it('signs what the live client signs: a quorum of such signatures is a valid link', () => {
    const signatures = federation.sites.slice(0, 3).map((site) => {
      const message = signUnmaskedRoundCommit(roundOf(site.siteId), request(), record.hashes, site.privateKey);
      expect(message).toMatchObject({ stage: 'commit', roundId: record.config.roundId, ...record.hashes });
      return { siteId: site.siteId, signature: message.signature, certificate: site.certificatePem };
    });
    const link = verifyCommitLink(
      { record: { ...record, signatures }, committedAt: COMMITTED_AT },
      { caCertificate: federation.trust.caCertificate, revocations: [], policy: testPolicy(), previousHead: START, taskHash: TEST_TASK_HASH, federationId: record.config.federationId },
    );
    expect(link.signers).toHaveLength(3);
  });

  it('signs the same hashes again (a repeated request), never other ones for the same round', () => {
    const site = federation.sites[0] as TestFederation['sites'][number];
    expect(reasonOf(() => signUnmaskedRoundCommit(roundOf(site.siteId), request(), record.hashes, site.privateKey, record.hashes))).toBe('SIGNED');
    const other = { ...record.hashes, aggregateHash: sha256(utf8('another aggregate')), newModelHash: sha256(utf8('another model')) };
    expect(reasonOf(() => signUnmaskedRoundCommit(roundOf(site.siteId), request(other), other, site.privateKey, record.hashes))).toBe('CONFLICTING_COMMIT');
  });

  it.each<[string, () => [UnmaskedRound, CommitRequestMessage, CommitHashes], string]>([
    ['a request for another round', () => [roundOf('late-00'), { ...request(), roundId: new Uint8Array(randomBytes(24)) }, record.hashes], 'WRONG_ROUND'],
    ['hashes the site did not compute', () => [roundOf('late-00'), request(), { ...record.hashes, newModelHash: sha256(utf8('mine')) }], 'COMMIT_MISMATCH'],
    [
      'a previous model that is not the round\'s',
      () => {
        const moved = { ...record.hashes, previousModelHash: sha256(utf8('other start')) };
        return [roundOf('late-00'), request(moved), moved];
      },
      'MODEL_HASH_MISMATCH',
    ],
    ['a site outside the U3 it signed', () => [unmaskedRound('late-00', record.config, record.keyListHash, ['late-01', 'late-02', 'late-03']), request(), record.hashes], 'NOT_A_SURVIVOR'],
  ])('refuses %s', (_what, make, reason) => {
    const [round, message, computed] = make();
    expect(reasonOf(() => signUnmaskedRoundCommit(round, message, computed, (federation.sites[0] as TestFederation['sites'][number]).privateKey))).toBe(reason);
  });

  it('says where it refused (stage commit, this site) and what differed, for the site\'s own log', () => {
    const site = federation.sites[0] as TestFederation['sites'][number];
    const errorOf = (run: () => unknown): { stage?: string; site?: string; message: string } => {
      try {
        run();
      } catch (error) {
        return error as { stage?: string; site?: string; message: string };
      }
      throw new Error('expected a refusal');
    };
    const where = ' (stage commit, site "late-00")';
    const mine = sha256(utf8('mine'));
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    const mismatch = errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), request(), { ...record.hashes, newModelHash: mine }, site.privateKey));
    expect(mismatch).toMatchObject({ stage: 'commit', site: 'late-00' });
    expect(mismatch.message).toBe(`commit_request.newModelHash is ${hex(record.hashes.newModelHash)} but this site computed ${hex(mine)}${where}`);
    expect(errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), { ...request(), roundId: new Uint8Array(24) }, record.hashes, site.privateKey)).message).toBe(
      `the commit request is for another round than the one this site unmasked in${where}`,
    );
    expect(errorOf(() => signUnmaskedRoundCommit(unmaskedRound('late-00', record.config, record.keyListHash, ['late-01']), request(), record.hashes, site.privateKey)).message).toBe(
      `this site is not in the U3 it signed for this round${where}`,
    );
    expect(errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), request({ ...record.hashes, aggregateHash: new Uint8Array(3) }), record.hashes, site.privateKey)).message).toBe(
      `commit_request.aggregateHash must be a 32-byte SHA-256 digest${where}`,
    );
    expect(errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), request(), { ...record.hashes, aggregateHash: new Uint8Array(3) }, site.privateKey)).message).toBe(
      `computed.aggregateHash must be a 32-byte SHA-256 digest${where}`,
    );
    const moved = { ...record.hashes, previousModelHash: mine };
    expect(errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), request(moved), moved, site.privateKey)).message).toBe(
      `commit_request.previousModelHash is not the model hash of this round's RoundConfig${where}`,
    );
    const other = { ...record.hashes, newModelHash: mine };
    expect(errorOf(() => signUnmaskedRoundCommit(roundOf('late-00'), request(other), other, site.privateKey, record.hashes)).message).toBe(
      `this site already signed a different commit in this round${where}`,
    );
  });
});
