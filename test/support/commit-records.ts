/**
 * Commit records made by hand, without running rounds: a RoundConfig starting from a given chain head, a
 * key list, U3, the four commit hashes and real RSA-PSS signatures of the test federation's sites over
 * the commit transcript (DESIGN.md step 7). What a verifier sees of a committed round, so the link check
 * (crypto/secagg/commit-chain.ts) and a site's chain follower can be tested against honest chains and
 * against forgeries a coordinator holding (or colluding with) site keys could make.
 */
import { randomBytes } from 'node:crypto';
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { signMessage } from '../../crypto/signature.js';
import type { CommitChainHead } from '../../crypto/secagg/commit-chain.js';
import { commitBody, encodeCommitRecord, type CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import { createRoundConfig, makeRoundId, type RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import { commitTranscript, commitmentOf, keyListHash, roundContext } from '../../crypto/secagg/transcript.js';
import { TEST_TASK_HASH, type TestFederation, type TestSite } from './secagg-sim.js';

export const CHAIN_FEDERATION_ID = 'fedgate-test';
/** When the synthetic rounds committed: inside every test certificate's validity. */
export const COMMITTED_AT = new Date();

export interface RoundInput {
  /** The head the round starts from (its model and optimiser state; counter + 1 unless `counter` is set). */
  readonly previous: CommitChainHead;
  readonly participants: readonly string[];
  /** U3. @default every participant */
  readonly survivors?: readonly string[];
  readonly counter?: bigint;
  readonly taskHash?: Uint8Array;
  readonly federationId?: string;
  /** The model r+1 the round records. @default a hash derived from the counter */
  readonly newModelHash?: Uint8Array;
  readonly newOptimizerStateHash?: Uint8Array;
}

/** An unsigned, self-consistent commit record of a round on `previous` (signatures added by signRecord). */
export function unsignedRecord(input: RoundInput): CommitRecord {
  const counter = input.counter ?? input.previous.counter + 1n;
  const config: RoundConfig = createRoundConfig({
    federationId: input.federationId ?? CHAIN_FEDERATION_ID,
    roundId: makeRoundId(counter, new Uint8Array(randomBytes(16))),
    participants: input.participants,
    taskHash: input.taskHash ?? TEST_TASK_HASH,
    modelHash: input.previous.modelHash,
    optimizerStateHash: input.previous.optimizerStateHash,
    neighbourDegree: input.participants.length - 1,
    layout: { parameterSegments: [{ length: 10, bound: 1 }], maxLossPerExample: 10, maxEvalExamples: 100 },
    maxWeight: 100,
  });
  const keyList = [...config.participants].map((siteId) => ({ siteId, advertDigest: commitmentOf(utf8(`advert ${siteId}`)), nonceCommitment: commitmentOf(utf8(`nonce ${siteId}`)) }));
  return {
    config,
    roundConfigHash: roundConfigHash(config),
    keyList,
    keyListHash: keyListHash(keyList),
    maskedSurvivors: [...(input.survivors ?? config.participants)].sort(),
    hashes: {
      previousModelHash: input.previous.modelHash,
      aggregateHash: sha256(utf8(`aggregate ${counter}`)),
      newModelHash: input.newModelHash ?? sha256(utf8(`model after round ${counter}`)),
      optimizerStateHash: input.newOptimizerStateHash ?? input.previous.optimizerStateHash,
    },
    signatures: [],
  };
}

/** `record` with one signature of each of `signers` (in order, repeats kept) over its commit transcript. */
export function signRecord(record: CommitRecord, signers: readonly TestSite[]): CommitRecord {
  const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
  return { ...record, signatures: signers.map((site) => ({ siteId: site.siteId, signature: signMessage(site.privateKey, transcript), certificate: site.certificatePem })) };
}

/** A round on `input.previous` signed by every survivor: a valid link. */
export function honestRecord(federation: TestFederation, input: RoundInput): CommitRecord {
  const record = unsignedRecord(input);
  return signRecord(record, record.maskedSurvivors.map((siteId) => federation.site(siteId)));
}

export function bodyOf(record: CommitRecord, committedAt = COMMITTED_AT): CommitBody {
  return commitBody(record, committedAt, { participants: record.config.participants.length, survivors: record.maskedSurvivors.length, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 1 });
}

/** The canonical bytes of `record`, as RoundCommitted and GetCommitRecords carry them. */
export function recordBytes(record: CommitRecord, committedAt = COMMITTED_AT): Uint8Array {
  return encodeCommitRecord(bodyOf(record, committedAt));
}

/** The head `record` leads to. */
export function headAfter(record: CommitRecord): CommitChainHead {
  return { counter: Buffer.from(record.config.roundId.subarray(0, 8)).readBigUInt64BE(), modelHash: record.hashes.newModelHash, optimizerStateHash: record.hashes.optimizerStateHash };
}

/** `length` honest rounds from `start`, each signed by every participant. */
export function honestChain(federation: TestFederation, start: CommitChainHead, length: number, participants: readonly string[] = federation.sites.map((site) => site.siteId)): CommitRecord[] {
  const records: CommitRecord[] = [];
  let head = start;
  for (let round = 0; round < length; round++) {
    const record = honestRecord(federation, { previous: head, participants });
    records.push(record);
    head = headAfter(record);
  }
  return records;
}
