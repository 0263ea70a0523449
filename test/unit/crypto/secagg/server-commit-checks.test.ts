/**
 * The coordinator's collection of commit signatures (crypto/secagg/server-commit.ts), checked on the
 * collector itself: only members of U3 may sign, once each; a member signing again after a rejected
 * signature is reported once per reason; the record reads back exactly the stored signature.
 */
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { CommitCollector } from '../../../../crypto/secagg/server-commit.js';
import type { CommitHashes, CommitSignatureMessage } from '../../../../crypto/secagg/messages.js';
import { commitTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { signMessage } from '../../../../crypto/signature.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;

beforeAll(() => {
  federation = cachedFederation(4, 'cmc-');
}, 300_000);

const hashes: CommitHashes = {
  previousModelHash: sha256(utf8('model r')),
  aggregateHash: sha256(utf8('aggregate')),
  newModelHash: sha256(utf8('model r+1')),
  optimizerStateHash: sha256(utf8('optimiser state r+1')),
};
const keyListHash = sha256(utf8('L'));

interface Setup {
  readonly collector: CommitCollector;
  readonly members: string[];
  readonly outsider: string;
  sign(siteId: string, over?: CommitHashes): CommitSignatureMessage;
}

/** Three members of U3 (t = 2) and one site of the federation outside U3; no revocation argument. */
function setup(): Setup {
  const all = federation.sites.map((site) => site.siteId);
  const members = all.slice(0, 3);
  const outsider = all[3] as string;
  const config = testRoundConfig({ participants: all, degree: 3, threshold: 3, parameters: 4 });
  const context = roundContext(config);
  const collector = new CommitCollector(context, keyListHash, hashes, members, 2);
  const sign = (siteId: string, over: CommitHashes = hashes): CommitSignatureMessage => ({
    stage: 'commit',
    roundId: config.roundId,
    ...over,
    signature: signMessage(federation.site(siteId).privateKey, commitTranscript(context, keyListHash, over, members)),
  } as CommitSignatureMessage);
  return { collector, members, outsider, sign };
}

const keyOf = (siteId: string) => federation.site(siteId).publicKey;

describe('CommitCollector', () => {
  it('refuses a valid signature from a site outside U3 (NOT_A_MEMBER) and does not count it', () => {
    const { collector, outsider, sign } = setup();
    const error = refusal(() => collector.add(outsider, sign(outsider), keyOf(outsider)));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NOT_A_MEMBER', stage: 'commit', site: outsider });
    expect(collector.signatureOf(outsider)).toBeUndefined();
    expect(collector.status()).toMatchObject({ signers: [], committed: false });
  });

  it('refuses a second signature from the same member (DUPLICATE_MESSAGE) and keeps the first', () => {
    const { collector, members, sign } = setup();
    const member = members[0] as string;
    const first = sign(member);
    collector.add(member, first, keyOf(member));
    const error = refusal(() => collector.add(member, sign(member), keyOf(member)));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'DUPLICATE_MESSAGE', stage: 'commit', site: member });
    expect(collector.signatureOf(member)).toEqual(first.signature);
    expect(collector.status().signers).toEqual([member]);
  });

  it('without a revocation check counts every valid member signature, and reads each back', () => {
    const { collector, members, sign } = setup();
    const messages = members.map((siteId) => sign(siteId));
    members.forEach((siteId, index) => collector.add(siteId, messages[index] as CommitSignatureMessage, keyOf(siteId)));
    expect(collector.status()).toEqual({ committed: true, required: 2, signers: members, rejected: [], revoked: [] });
    members.forEach((siteId, index) => expect(collector.signatureOf(siteId)).toEqual((messages[index] as CommitSignatureMessage).signature));
    expect(collector.signatureOf('nobody')).toBeUndefined();
  });

  it('reports each rejected (site, reason) once, and every site and reason apart', () => {
    const { collector, members, sign } = setup();
    const [a, b] = members as [string, string];
    const other: CommitHashes = { ...hashes, newModelHash: sha256(utf8('another model')) };
    const badSignature = (siteId: string): CommitSignatureMessage => ({ ...sign(siteId), signature: sign(members[2] as string).signature });
    expect(refusal(() => collector.add(a, badSignature(a), keyOf(a))).reason).toBe('BAD_SIGNATURE');
    expect(refusal(() => collector.add(a, badSignature(a), keyOf(a))).reason).toBe('BAD_SIGNATURE');
    expect(refusal(() => collector.add(b, badSignature(b), keyOf(b))).reason).toBe('BAD_SIGNATURE');
    expect(refusal(() => collector.add(a, sign(a, other), keyOf(a))).reason).toBe('COMMIT_MISMATCH');
    expect(refusal(() => collector.add(a, sign(a, other), keyOf(a))).reason).toBe('COMMIT_MISMATCH');
    expect(collector.status().rejected).toEqual([
      { siteId: a, reason: 'BAD_SIGNATURE' },
      { siteId: b, reason: 'BAD_SIGNATURE' },
      { siteId: a, reason: 'COMMIT_MISMATCH' },
    ]);
    expect(collector.status().signers).toEqual([]);
  });
});
