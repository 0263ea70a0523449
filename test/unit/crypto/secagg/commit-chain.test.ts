/**
 * verifyCommitLink (crypto/secagg/commit-chain.ts): the one check sites and `fedgate verify` make on each
 * commit record of the chain. A table of forgeries, each consistent everywhere but in one place - digests
 * recomputed and signatures re-made with the sites' own keys, as a coordinator colluding with sites could
 * - so only the named check stands between the forgery and an accepted link; deleting that check lets
 * its row through. The honest rows show the checks do not refuse what an honest federation produces.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { verifyCommitLink, type CommitChainHead, type CommitLinkOptions } from '../../../../crypto/secagg/commit-chain.js';
import { decodeCommitRecord } from '../../../../crypto/secagg/commit-record-codec.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { keyListHash } from '../../../../crypto/secagg/transcript.js';
import { COMMITTED_AT, headAfter, honestChain, honestRecord, recordBytes, signRecord, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_OPTIMIZER_HASH, TEST_MODEL_HASH, TEST_TASK_HASH, cachedFederation, createTestFederation, testPolicy, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let sites: string[];
const START: CommitChainHead = { counter: 0n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };

beforeAll(() => {
  federation = cachedFederation(5, 'link-');
  sites = federation.sites.map((site) => site.siteId);
}, 300_000);

function options(overrides: Partial<CommitLinkOptions> = {}): CommitLinkOptions {
  return {
    caCertificate: federation.trust.caCertificate,
    revocations: [],
    policy: testPolicy(),
    previousHead: START,
    taskHash: TEST_TASK_HASH,
    federationId: 'fedgate-test',
    ...overrides,
  };
}

/** Four of the five sites take part; all four survive and sign. */
function honest(): CommitRecord {
  return honestRecord(federation, { previous: START, participants: sites.slice(0, 4) });
}

/** `record` edited, its digests recomputed and re-signed by `signers` (default: every survivor). */
function forge(edit: (record: CommitRecord) => CommitRecord, signers?: readonly string[]): CommitRecord {
  const edited = edit(honest());
  const consistent = { ...edited, roundConfigHash: roundConfigHash(edited.config), keyListHash: keyListHash(edited.keyList) };
  return signRecord(consistent, (signers ?? consistent.maskedSurvivors).map((siteId) => federation.site(siteId)));
}

function reasonOf(record: CommitRecord, linkOptions: CommitLinkOptions = options(), committedAt = COMMITTED_AT): string {
  try {
    verifyCommitLink({ record, committedAt }, linkOptions);
  } catch (error) {
    if (error instanceof SecAggError) return `${error.reason}: ${error.message}`;
    throw error;
  }
  return 'ACCEPTED';
}

const other = (label: string): Uint8Array => sha256(utf8(label));

describe('verifyCommitLink accepts', () => {
  it('an honest round and returns the head it leads to', () => {
    const record = honest();
    const link = verifyCommitLink({ record, committedAt: COMMITTED_AT }, options());
    expect(link.head).toEqual(headAfter(record));
    expect(link.signers).toEqual(record.maskedSurvivors);
  });

  it('a chain of honest rounds, link by link, after a round trip through the wire encoding', () => {
    let head = START;
    for (const record of honestChain(federation, START, 3, sites)) {
      const received = decodeCommitRecord(recordBytes(record));
      head = verifyCommitLink(received, options({ previousHead: head })).head;
    }
    expect(head.counter).toBe(3n);
  });

  it('a quorum without every survivor, and a signer revoked only after the commit', () => {
    const record = forge((r) => r, sites.slice(0, 3));
    const signer = federation.site(sites[0] as string);
    const later = new Date(COMMITTED_AT.getTime() + 60_000);
    expect(reasonOf(record, options({ revocations: [{ serial: signer.serial, revokedAt: later }] }))).toBe('ACCEPTED');
  });
});

describe('verifyCommitLink refuses, each by its own check,', () => {
  const outsider = (): string => sites[4] as string;
  const cases: [string, () => [CommitRecord, CommitLinkOptions?], RegExp][] = [
    ['a round of another federation', () => [forge((r) => ({ ...r, config: { ...r.config, federationId: 'elsewhere' } }))], /^FEDERATION_MISMATCH: federation id elsewhere differs/],
    [
      'a round of another task (pinned by the site too, so only the chain rule refuses it)',
      () => [forge((r) => ({ ...r, config: { ...r.config, taskHash: other('task') } })), options({ policy: testPolicy({ pinnedTaskHashes: [TEST_TASK_HASH, other('task')] }) })],
      /^TASK_HASH_MISMATCH: /,
    ],
    ['a recorded H(RoundConfig) that is not the stored RoundConfig\'s', () => [{ ...honest(), roundConfigHash: other('config') }], /^CONFIG_HASH_MISMATCH: /],
    [
      'a recorded H(L) that is not the stored key list\'s (signed over the recorded one)',
      () => [signRecord({ ...unsignedRecord({ previous: START, participants: sites.slice(0, 4) }), keyListHash: other('L') }, sites.slice(0, 4).map((id) => federation.site(id)))],
      /^KEY_LIST_HASH_MISMATCH: /,
    ],
    ['a survivor outside U', () => [forge((r) => ({ ...r, maskedSurvivors: [...r.maskedSurvivors, outsider()].sort() }), sites.slice(0, 4))], /^SURVIVOR_NOT_MEMBER: survivor link-04 is not a member/],
    [
      'a survivor in U but not in L',
      () => [forge((r) => ({ ...r, keyList: r.keyList.filter((entry) => entry.siteId !== sites[3]) }), sites.slice(0, 3))],
      /^SURVIVOR_NOT_MEMBER: survivor link-03 is not a member/,
    ],
    ['a survivor listed twice', () => [forge((r) => ({ ...r, maskedSurvivors: [...r.maskedSurvivors, sites[0] as string].sort() }), sites.slice(0, 4))], /^SURVIVOR_NOT_MEMBER: survivor link-00 is listed twice in U3$/],
    ['a commit whose previous model is not the RoundConfig\'s', () => [forge((r) => ({ ...r, hashes: { ...r.hashes, previousModelHash: other('previous') } }))], /^PREVIOUS_MODEL_MISMATCH: /],
    ['a round counter not above the head\'s', () => [honest(), options({ previousHead: { ...START, counter: 1n } })], /^COUNTER_NOT_INCREASING: round counter 1 is not above 1/],
    ['a round on another model than the head', () => [honest(), options({ previousHead: { ...START, modelHash: other('head model') } })], /^CHAIN_MODEL_MISMATCH: /],
    ['a round on another optimiser state than the head', () => [honest(), options({ previousHead: { ...START, optimizerStateHash: other('head state') } })], /^CHAIN_OPTIMIZER_STATE_MISMATCH: /],
    ['a round below the site\'s threshold minimum (its RoundStart policy)', () => [honest(), options({ policy: testPolicy({ minThreshold: 4 }) })], /^THRESHOLD_BELOW_SITE_MINIMUM: /],
    ['a plaintext round at a site that allows none', () => [forge((r) => ({ ...r, config: { ...r.config, plaintext: true } }))], /^PLAINTEXT_NOT_ALLOWED: /],
    ['a round with fewer survivors than the site\'s minimum', () => [forge((r) => ({ ...r, maskedSurvivors: r.maskedSurvivors.slice(0, 3) })), options({ policy: testPolicy({ minParticipants: 4 }) })], /^TOO_FEW_SURVIVORS: /],
    ['a signature from a member of U outside U3', () => [forge((r) => ({ ...r, maskedSurvivors: r.maskedSurvivors.slice(0, 3) }), sites.slice(0, 4))], /^SIGNER_NOT_SURVIVOR: a commit signature comes from link-03/],
    ['a signer counted twice', () => [forge((r) => r, [...sites.slice(0, 3), sites[0] as string])], /^DUPLICATE_SIGNER: link-00 signed twice$/],
    ['a signature over other commit hashes', () => {
      const record = honest();
      const stray = signRecord({ ...record, hashes: { ...record.hashes, newModelHash: other('model') } }, [federation.site(sites[3] as string)]).signatures;
      return [{ ...record, signatures: [...record.signatures.slice(0, 3), ...stray] }];
    }, /^BAD_SIGNATURE: the commit signature of link-03 does not verify$/],
    ['a quorum short by one', () => [forge((r) => r, sites.slice(0, 2))], /^COMMIT_QUORUM_MISSING: 2 valid commit signatures, 3 needed/],
  ];
  for (const [what, make, expected] of cases) {
    it(what, () => {
      const [record, linkOptions] = make();
      expect(reasonOf(record, linkOptions)).toMatch(expected);
    });
  }

  it.each(['operator', 'coordinator'] as const)('a %s certificate with a survivor\'s name', (role) => {
    const record = honest();
    const impostor = federation.issue(sites[3] as string, { role });
    const transcriptSigned = signRecord(record, [impostor]).signatures;
    expect(reasonOf({ ...record, signatures: [...record.signatures.slice(0, 3), ...transcriptSigned] })).toMatch(/^SIGNER_CERTIFICATE_INVALID: the certificate of signer link-03 .* expected "participant"/);
  });

  it('a certificate of another CA', () => {
    const stranger = createTestFederation(1, 'link-').site('link-00');
    const record = honest();
    expect(reasonOf(signRecord(record, [stranger, ...sites.slice(1, 4).map((id) => federation.site(id))]))).toMatch(/^SIGNER_CERTIFICATE_INVALID: the certificate of signer link-00 .*not issued and signed by the federation CA/);
  }, 60_000);

  it('a signer revoked before the commit, and one revoked without a date', () => {
    const record = honest();
    const signer = federation.site(sites[1] as string);
    const before = new Date(COMMITTED_AT.getTime() - 60_000);
    expect(reasonOf(record, options({ revocations: [{ serial: signer.serial, revokedAt: before }] }))).toMatch(/^SIGNER_CERTIFICATE_INVALID: .*revoked/);
    expect(reasonOf(record, options({ revocations: [{ serial: signer.serial }] }))).toMatch(/^SIGNER_CERTIFICATE_INVALID: .*revoked/);
  });

  it('a link taken out of order: round 2 verified from the start', () => {
    const [, second] = honestChain(federation, START, 2, sites) as [CommitRecord, CommitRecord];
    expect(reasonOf(second)).toMatch(/^CHAIN_MODEL_MISMATCH: /);
  });

  it('a record whose bytes are not canonical', () => {
    const bytes = recordBytes(honest());
    const spaced = Buffer.from(` ${Buffer.from(bytes).toString('utf8')}`);
    expect(() => decodeCommitRecord(spaced)).toThrow(/not in canonical form/);
    expect(() => decodeCommitRecord(Buffer.from('{"kind":"round_commit"}'))).toThrow(/COMMIT|body\.roundConfig must be base64 text/);
    expect(() => decodeCommitRecord(new Uint8Array(randomBytes(16)))).toThrow(SecAggError);
  });
});

describe('verifyCommitLink, at the edges of revocation and in its messages', () => {
  const errorOf = (record: CommitRecord, linkOptions: CommitLinkOptions = options(), committedAt = COMMITTED_AT): SecAggError => {
    try {
      verifyCommitLink({ record, committedAt }, linkOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(SecAggError);
      return error as SecAggError;
    }
    throw new Error('expected a refusal');
  };

  it('a revocation dated exactly at the commit invalidates the signature', () => {
    const signer = federation.site(sites[1] as string);
    const error = errorOf(honest(), options({ revocations: [{ serial: signer.serial, revokedAt: new Date(COMMITTED_AT.getTime()) }] }));
    expect(error.reason).toBe('SIGNER_CERTIFICATE_INVALID');
    expect(error.message).toContain("is revoked by the federation CA's CRL");
  });

  it('a CRL serial written another way (lower case, colons, leading zeros) still revokes, and the certificate error is the cause', () => {
    const signer = federation.site(sites[2] as string);
    const written = `00:${(signer.serial.toLowerCase().match(/.{1,2}/g) ?? []).join(':')}`;
    const error = errorOf(honest(), options({ revocations: [{ serial: written, revokedAt: new Date(COMMITTED_AT.getTime() - 1) }] }));
    expect(error.reason).toBe('SIGNER_CERTIFICATE_INVALID');
    expect(error.message.startsWith(`the certificate of signer link-02 is not acceptable at commit time ${COMMITTED_AT.toISOString()}: certificate of "CN=link-02`)).toBe(true);
    expect(error.message).toMatch(/\(serial [0-9A-F]+\) is revoked by the federation CA's CRL$/);
    expect(error.cause).toMatchObject({ reason: 'CERTIFICATE_REVOKED' });
  });

  it('names the task, the model and the optimiser state it expected, and the counts it found', () => {
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    const otherTask = other('task');
    const record = forge((r) => ({ ...r, config: { ...r.config, taskHash: otherTask } }));
    expect(errorOf(record, options({ policy: testPolicy({ pinnedTaskHashes: [TEST_TASK_HASH, otherTask] }) })).message).toBe(
      `the round trains task ${hex(otherTask)}, the chain's task is ${hex(TEST_TASK_HASH)}`,
    );
    const headModel = other('head model');
    expect(errorOf(honest(), options({ previousHead: { ...START, modelHash: headModel } })).message).toBe(
      `the round starts from model ${hex(TEST_MODEL_HASH).slice(0, 16)}..., the chain head is model ${hex(headModel).slice(0, 16)}...`,
    );
    const headState = other('head state');
    expect(errorOf(honest(), options({ previousHead: { ...START, optimizerStateHash: headState } })).message).toBe(
      `the round starts from server-optimiser state ${hex(TEST_OPTIMIZER_HASH).slice(0, 16)}..., the chain head's is ${hex(headState).slice(0, 16)}...`,
    );
    expect(errorOf({ ...honest(), roundConfigHash: other('config') }).message).toBe('the stored RoundConfig does not hash to the recorded H(RoundConfig)');
    expect(errorOf(forge((r) => ({ ...r, hashes: { ...r.hashes, previousModelHash: other('previous') } }))).message).toBe(
      "the commit's previous model hash is not the RoundConfig's model hash",
    );
    expect(errorOf(forge((r) => ({ ...r, maskedSurvivors: r.maskedSurvivors.slice(0, 3) })), options({ policy: testPolicy({ minParticipants: 4 }) })).message).toBe(
      "the round committed with 3 survivors (U3), fewer than the policy's minimum of 4",
    );
  });

  it('names the key list check', () => {
    const record = signRecord({ ...unsignedRecord({ previous: START, participants: sites.slice(0, 4) }), keyListHash: other('L') }, sites.slice(0, 4).map((id) => federation.site(id)));
    expect(errorOf(record).message).toBe('the stored key list L does not hash to the recorded H(L)');
  });
});
