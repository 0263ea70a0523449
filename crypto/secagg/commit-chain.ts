/**
 * The verified chain of commit records (DESIGN.md "What a site checks for itself": a site trains only on
 * the head of a chain of quorum-signed commit records that it has verified back to the task's pinned
 * initial model and server optimiser). One link check, shared by every site (participant/chain) and by
 * `fedgate verify` (coordinator/audit), so what a site accepts and what an auditor accepts cannot drift.
 *
 * A record is a valid link from `previousHead` when:
 *  - it is a round of this federation and this task;
 *  - its stored RoundConfig hashes to the recorded H(RoundConfig), its key list to H(L), and U3 is a set
 *    of distinct members of both U and L;
 *  - the commit's previous model is the RoundConfig's model, its round counter is above the head's, and
 *    the RoundConfig starts from the head's model and server-optimiser state;
 *  - the round meets the given site policy as a site would have checked it at RoundStart (minimum
 *    participants, thresholds and collusion margin, plaintext, roster), membership aside, and |U3| is at
 *    least the policy's minimum;
 *  - a quorum (commitQuorum: more than half of U3 and at least t) of distinct U3 members signed the commit
 *    transcript, each with a participant certificate issued by the CA, valid and not revoked at commit time.
 * The new head is the record's new model and optimiser state. It attests agreement, not honest inputs.
 */
import type { X509Certificate } from 'node:crypto';
import { bytesEqual, toHex } from '../bytes.js';
import { normalizeSerial, verifyPeerCertificate } from '../certificate.js';
import { verifyMessage } from '../signature.js';
import { roundConfigHash } from './config-codec.js';
import { secaggDenied, secaggPrecondition } from './errors.js';
import { checkCommittedRoundAgainstPolicy, type SitePolicy } from './policy.js';
import { commitQuorum, type CommitRecord } from './server-commit.js';
import { roundCounterOf } from './commit-record-codec.js';
import { commitTranscript, keyListHash, roundContext } from './transcript.js';

/** Where a chain stands: the round that produced the head (0 = the task's initial model) and its outputs. */
export interface CommitChainHead {
  readonly counter: bigint;
  readonly modelHash: Uint8Array;
  readonly optimizerStateHash: Uint8Array;
}

/** A CRL entry. A dated one invalidates signatures made at or after its date; an undated one, every signature. */
export interface CommitRevocation {
  readonly serial: string;
  readonly revokedAt?: Date;
}

export interface CommitLinkOptions {
  readonly caCertificate: X509Certificate;
  readonly revocations: readonly CommitRevocation[];
  /** The rules the verifier holds the round to (a site's own policy; `fedgate verify` a structural one). */
  readonly policy: SitePolicy;
  readonly previousHead: CommitChainHead;
  /** The one task hash of the chain (32 bytes). */
  readonly taskHash: Uint8Array;
  /** The one federation id of the chain. */
  readonly federationId: string;
}

export interface VerifiedCommitLink {
  readonly head: CommitChainHead;
  /** U3 members whose signatures verified, in record order. */
  readonly signers: readonly string[];
}

/** The reasons verifyCommitLink fails with besides the policy's own (policy.ts), for tests and logs. */
export const COMMIT_LINK_REASONS = [
  'FEDERATION_MISMATCH',
  'TASK_HASH_MISMATCH',
  'CONFIG_HASH_MISMATCH',
  'KEY_LIST_HASH_MISMATCH',
  'SURVIVOR_NOT_MEMBER',
  'PREVIOUS_MODEL_MISMATCH',
  'COUNTER_NOT_INCREASING',
  'CHAIN_MODEL_MISMATCH',
  'CHAIN_OPTIMIZER_STATE_MISMATCH',
  'TOO_FEW_SURVIVORS',
  'SIGNER_NOT_SURVIVOR',
  'DUPLICATE_SIGNER',
  'SIGNER_CERTIFICATE_INVALID',
  'BAD_SIGNATURE',
  'COMMIT_QUORUM_MISSING',
] as const;

export type CommitLinkReason = (typeof COMMIT_LINK_REASONS)[number];

/**
 * Checks `commit` as the link that follows `previousHead` and returns the new head; throws SecAggError
 * (FAILED_PRECONDITION for chain and policy, PERMISSION_DENIED for digests and signatures) whose reason
 * is one of COMMIT_LINK_REASONS or a policy reason, and whose message names the failing check.
 */
export function verifyCommitLink(commit: { readonly record: CommitRecord; readonly committedAt: Date }, options: CommitLinkOptions): VerifiedCommitLink {
  const { record, committedAt } = commit;
  const { config, hashes } = record;
  const refuse = (reason: CommitLinkReason, message: string): never => {
    throw secaggPrecondition(reason, message);
  };
  const deny = (reason: CommitLinkReason, message: string): never => {
    throw secaggDenied(reason, message);
  };
  if (config.federationId !== options.federationId) refuse('FEDERATION_MISMATCH', `federation id ${config.federationId} differs from the chain's ${options.federationId}`);
  if (!bytesEqual(config.taskHash, options.taskHash)) refuse('TASK_HASH_MISMATCH', `the round trains task ${toHex(config.taskHash)}, the chain's task is ${toHex(options.taskHash)}`);
  if (!bytesEqual(roundConfigHash(config), record.roundConfigHash)) deny('CONFIG_HASH_MISMATCH', 'the stored RoundConfig does not hash to the recorded H(RoundConfig)');
  if (!bytesEqual(keyListHash(record.keyList), record.keyListHash)) deny('KEY_LIST_HASH_MISMATCH', 'the stored key list L does not hash to the recorded H(L)');
  const members = new Set(config.participants);
  const listed = new Set(record.keyList.map((entry) => entry.siteId));
  const survivors = new Set<string>();
  for (const siteId of record.maskedSurvivors) {
    if (!members.has(siteId) || !listed.has(siteId)) refuse('SURVIVOR_NOT_MEMBER', `survivor ${siteId} is not a member of the round's U and L`);
    if (survivors.has(siteId)) refuse('SURVIVOR_NOT_MEMBER', `survivor ${siteId} is listed twice in U3`);
    survivors.add(siteId);
  }
  if (!bytesEqual(hashes.previousModelHash, config.modelHash)) refuse('PREVIOUS_MODEL_MISMATCH', "the commit's previous model hash is not the RoundConfig's model hash");
  const counter = roundCounterOf(config.roundId);
  const head = options.previousHead;
  if (counter <= head.counter) refuse('COUNTER_NOT_INCREASING', `round counter ${counter} is not above ${head.counter}, the counter of the chain head`);
  if (!bytesEqual(config.modelHash, head.modelHash)) {
    refuse('CHAIN_MODEL_MISMATCH', `the round starts from model ${toHex(config.modelHash).slice(0, 16)}..., the chain head is model ${toHex(head.modelHash).slice(0, 16)}...`);
  }
  if (!bytesEqual(config.optimizerStateHash, head.optimizerStateHash)) {
    refuse(
      'CHAIN_OPTIMIZER_STATE_MISMATCH',
      `the round starts from server-optimiser state ${toHex(config.optimizerStateHash).slice(0, 16)}..., the chain head's is ${toHex(head.optimizerStateHash).slice(0, 16)}...`,
    );
  }
  checkCommittedRoundAgainstPolicy(config, options.policy);
  if (survivors.size < options.policy.minParticipants) refuse('TOO_FEW_SURVIVORS', `the round committed with ${survivors.size} survivors (U3), fewer than the policy's minimum of ${options.policy.minParticipants}`);
  const signers = verifySignatures(record, committedAt, options, survivors);
  const required = commitQuorum(survivors.size, config.reconstructionThreshold);
  if (signers.length < required) {
    refuse('COMMIT_QUORUM_MISSING', `${signers.length} valid commit signatures, ${required} needed (more than half of ${survivors.size} survivors and at least t = ${config.reconstructionThreshold})`);
  }
  return { head: { counter, modelHash: new Uint8Array(hashes.newModelHash), optimizerStateHash: new Uint8Array(hashes.optimizerStateHash) }, signers };
}

/** Every stored signature must verify; returns the signers in record order. */
function verifySignatures(record: CommitRecord, committedAt: Date, options: CommitLinkOptions, survivors: ReadonlySet<string>): string[] {
  // A revocation dated at or before the commit (or undated) makes a signature invalid.
  const revokedThen = new Set(
    options.revocations.filter((entry) => entry.revokedAt === undefined || entry.revokedAt.getTime() <= committedAt.getTime()).map((entry) => normalizeSerial(entry.serial)),
  );
  const trust = { caCertificate: options.caCertificate, revokedSerials: revokedThen };
  const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
  const signers: string[] = [];
  for (const signature of record.signatures) {
    const { siteId } = signature;
    if (!survivors.has(siteId)) throw secaggDenied('SIGNER_NOT_SURVIVOR', `a commit signature comes from ${siteId}, which is not a survivor (U3) of this round`);
    if (signers.includes(siteId)) throw secaggDenied('DUPLICATE_SIGNER', `${siteId} signed twice`);
    let publicKey;
    try {
      publicKey = verifyPeerCertificate(signature.certificate, trust, committedAt, { siteId, role: 'participant' }).publicKey;
    } catch (error) {
      throw secaggDenied('SIGNER_CERTIFICATE_INVALID', `the certificate of signer ${siteId} is not acceptable at commit time ${committedAt.toISOString()}: ${(error as Error).message}`, { cause: error });
    }
    if (!verifyMessage(publicKey, transcript, signature.signature)) throw secaggDenied('BAD_SIGNATURE', `the commit signature of ${siteId} does not verify`);
    signers.push(siteId);
  }
  return signers;
}
