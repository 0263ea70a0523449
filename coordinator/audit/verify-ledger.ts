/**
 * `fedgate verify`: checks a coordinator's ledger offline with nothing but the state directory, the CA
 * certificate and (optionally) its CRL (DESIGN.md step 7). For every record, in order:
 *  - the hash chain (sequence, link to the previous record, record hash);
 *  - the stored RoundConfig hashes to the recorded H(RoundConfig), the key list to H(L), U3 is a subset
 *    of U and of L, and the model chain links (previous model of round n = new model of round n-1);
 *  - every commit signature: signer in U3, certificate issued by the CA, a participant, valid and not
 *    revoked at commit time, signature over the commit transcript; and a quorum (more than half of U3
 *    and at least t) of such signatures;
 *  - the stored artefacts: the model r+1 recomputed from model r, the aggregate and the optimiser state
 *    hashes to the recorded new model hash, and the new optimiser state to the recorded hash.
 * It attests that the federation agreed on this membership and this result, not that any input was honest.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { verifyPeerCertificate } from '../../crypto/certificate.js';
import { sha256Hex } from '../../crypto/hash.js';
import { verifyMessage } from '../../crypto/signature.js';
import { decodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { commitQuorum } from '../../crypto/secagg/server-commit.js';
import { commitTranscript, keyListHash, roundContext } from '../../crypto/secagg/transcript.js';
import { nextModel, type NextModel } from '../../model/next-model.js';
import { decodeServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights, weightsLayout } from '../../model/weight-codec.js';
import { parseCommitBody } from '../federation/commit-json.js';
import { findChainProblem, readLedgerDirectory } from '../state/ledger.js';
import { ModelStore } from '../state/model-store.js';

export interface Revocation {
  readonly serial: string;
  readonly revokedAt: Date;
}

export interface VerifyLedgerOptions {
  readonly stateDirectory: string;
  readonly caPem: string;
  /** Entries of the CA's CRL (verified by the caller). */
  readonly revocations?: readonly Revocation[];
  /** Recompute every model from its predecessor (needs the state directory's models/). @default true */
  readonly recomputeModels?: boolean;
}

export type VerifyLedgerResult =
  | { readonly ok: true; readonly rounds: number; readonly headHash: string; readonly signaturesChecked: number }
  | { readonly ok: false; readonly round: number; readonly problem: string; readonly roundsVerified: number };

export async function verifyLedger(options: VerifyLedgerOptions): Promise<VerifyLedgerResult> {
  const records = await readLedgerDirectory(join(options.stateDirectory, 'ledger')).catch((error: unknown) => {
    throw new Error(`cannot read the ledger in ${options.stateDirectory}: ${(error as Error).message}`, { cause: error });
  });
  const chainProblem = findChainProblem(records);
  if (chainProblem !== undefined) {
    const round = Number(/^record (\d+)/.exec(chainProblem)?.[1] ?? 1);
    return { ok: false, round, problem: chainProblem, roundsVerified: round - 1 };
  }
  const caCertificate = new X509Certificate(options.caPem);
  const store = options.recomputeModels === false ? undefined : await ModelStore.open(options.stateDirectory);
  let previousNewModel: string | undefined;
  let federationId: string | undefined;
  let signaturesChecked = 0;
  for (const record of records) {
    const round = record.sequence;
    const fail = (problem: string): VerifyLedgerResult => ({ ok: false, round, problem, roundsVerified: round - 1 });
    let parsed;
    try {
      parsed = parseCommitBody(record.body, `record ${round}`);
    } catch (error) {
      return fail((error as Error).message);
    }
    const { record: commit, committedAt, body } = parsed;
    const config = commit.config;
    if (toHex(commit.roundConfigHash) !== body.roundConfigHash) return fail('the stored RoundConfig does not hash to the recorded H(RoundConfig)');
    if (!bytesEqual(keyListHash(commit.keyList), commit.keyListHash)) return fail('the stored key list L does not hash to the recorded H(L)');
    federationId ??= config.federationId;
    if (config.federationId !== federationId) return fail(`federation id ${config.federationId} differs from the first round's ${federationId}`);
    const members = new Set(config.participants);
    const listed = new Set(commit.keyList.map((entry) => entry.siteId));
    for (const siteId of commit.maskedSurvivors) {
      if (!members.has(siteId) || !listed.has(siteId)) return fail(`survivor ${siteId} is not a member of the round's U and L`);
    }
    if (!bytesEqual(commit.hashes.previousModelHash, config.modelHash)) return fail('the commit\'s previous model hash is not the RoundConfig\'s model hash');
    if (previousNewModel !== undefined && body.previousModelHash !== previousNewModel) {
      return fail(`round ${round} starts from model ${body.previousModelHash.slice(0, 16)}..., but round ${round - 1} produced ${previousNewModel.slice(0, 16)}...`);
    }
    // Signatures: a revocation dated at or before the commit makes a signature invalid.
    const revokedThen = new Set((options.revocations ?? []).filter((entry) => entry.revokedAt.getTime() <= committedAt.getTime()).map((entry) => entry.serial));
    const transcript = commitTranscript(roundContext(config), commit.keyListHash, commit.hashes, commit.maskedSurvivors);
    const signers = new Set<string>();
    for (const signature of commit.signatures) {
      if (!commit.maskedSurvivors.includes(signature.siteId)) return fail(`a commit signature comes from ${signature.siteId}, which is not a survivor (U3) of this round`);
      if (signers.has(signature.siteId)) return fail(`${signature.siteId} signed twice`);
      let publicKey;
      try {
        publicKey = verifyPeerCertificate(signature.certificate, { caCertificate, revokedSerials: revokedThen }, committedAt, { siteId: signature.siteId, role: 'participant' }).publicKey;
      } catch (error) {
        return fail(`the certificate of signer ${signature.siteId} is not acceptable at commit time ${committedAt.toISOString()}: ${(error as Error).message}`);
      }
      if (!verifyMessage(publicKey, transcript, signature.signature)) return fail(`the commit signature of ${signature.siteId} does not verify`);
      signers.add(signature.siteId);
      signaturesChecked += 1;
    }
    const required = commitQuorum(commit.maskedSurvivors.length, config.reconstructionThreshold);
    if (signers.size < required) return fail(`${signers.size} valid commit signatures, ${required} needed (more than half of ${commit.maskedSurvivors.length} survivors and at least t = ${config.reconstructionThreshold})`);
    if (store !== undefined) {
      const problem = await checkRecomputedRound(store, config, body);
      if (problem !== undefined) return fail(problem);
    }
    previousNewModel = body.newModelHash;
  }
  return { ok: true, rounds: records.length, headHash: records.at(-1)?.recordHash ?? '0'.repeat(64), signaturesChecked };
}

export interface RecomputedRound extends NextModel {
  /** SHA-256 (hex) of the recomputed model r+1 and optimiser state: what the ledger must record. */
  readonly newModelHash: string;
  readonly optimizerStateHash: string;
}

/**
 * Model r+1 recomputed from the stored artefacts of a round: model r, the aggregate the commit names and
 * the optimiser state its RoundConfig names, read and combined exactly as the coordinator and the sites
 * did (decodeAggregate, nextModel). The layout comes from model r's self-describing bytes.
 */
export async function recomputeRound(store: ModelStore, config: RoundConfig, artefacts: { readonly previousModelHash: string; readonly aggregateHash: string }): Promise<RecomputedRound> {
  const previousBytes = await store.get(artefacts.previousModelHash);
  const layout = weightsLayout(previousBytes);
  const aggregate = decodeAggregate(config, await store.get(artefacts.aggregateHash));
  const { spec, state } = decodeServerOptimizerState(await store.get(toHex(config.optimizerStateHash)));
  const next = nextModel({ layout, model: decodeWeights(layout, previousBytes), optimizer: spec, optimizerState: state, aggregate });
  return { ...next, newModelHash: sha256Hex(next.modelBytes), optimizerStateHash: sha256Hex(next.optimizerStateBytes) };
}

async function checkRecomputedRound(store: ModelStore, config: RoundConfig, body: { previousModelHash: string; aggregateHash: string; newModelHash: string; optimizerStateHash: string }): Promise<string | undefined> {
  let recomputed: RecomputedRound;
  try {
    recomputed = await recomputeRound(store, config, body);
  } catch (error) {
    return `a stored artefact of this round is missing or damaged: ${(error as Error).message}`;
  }
  if (recomputed.newModelHash !== body.newModelHash) {
    return `recomputing model r+1 from model r, the aggregate and the optimiser state gives ${recomputed.newModelHash.slice(0, 16)}..., the ledger records ${body.newModelHash.slice(0, 16)}...`;
  }
  if (recomputed.optimizerStateHash !== body.optimizerStateHash) return 'the recomputed server-optimiser state does not match the recorded hash';
  return undefined;
}
