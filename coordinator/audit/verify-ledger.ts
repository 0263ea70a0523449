/**
 * `fedgate verify`: checks a coordinator's ledger offline with nothing but the state directory, the CA
 * certificate and (optionally) its CRL (DESIGN.md step 7). For every record, in order:
 *  - the hash chain (sequence, link to the previous record, record hash);
 *  - the record as a link of the chain of commit records, with the same verifyCommitLink every site uses
 *    (crypto/secagg/commit-chain.ts): H(RoundConfig) and H(L), U3 within U and L, one federation and one
 *    task throughout, round counters strictly increasing, round 1 starting from the initial model and
 *    server-optimiser state the task pins and round n from round n-1's model and optimiser state, every
 *    commit signature (signer in U3, participant certificate issued by the CA, valid and not revoked at
 *    commit time, signature over the commit transcript) and a quorum of them;
 *  - the stored artefacts: the model r+1 recomputed from model r, the aggregate and the optimiser state
 *    hashes to the recorded new model hash, and the new optimiser state to the recorded hash.
 * It attests that the federation agreed on this membership and this result, not that any input was honest.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { sha256Hex } from '../../crypto/hash.js';
import { decodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { verifyCommitLink, type CommitChainHead } from '../../crypto/secagg/commit-chain.js';
import { parseCommitBody } from '../../crypto/secagg/commit-record-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import { nextModel, type NextModel } from '../../model/next-model.js';
import { decodeServerOptimizerState } from '../../model/server-optimizer.js';
import { parseTaskDocument, requirePinnedTask, type TaskDocument } from '../../model/task.js';
import { chainStart, taskParameterCount } from '../../model/task-pin.js';
import { decodeWeights, weightsLayout } from '../../model/weight-codec.js';
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
  /**
   * The task document the ledger must start from, with its forward model for kind 'onnx'. @default the
   * task stored in the state directory's models/ under the task hash of round 1
   */
  readonly task?: { readonly document: TaskDocument; readonly forwardModel?: Uint8Array };
  /**
   * The rules each round is held to, as a site's policy. @default structural only: t > (k+1)/2, plaintext
   * and any round size allowed (what the coordinator itself enforces)
   */
  readonly policy?: Omit<SitePolicy, 'pinnedTaskHashes'>;
}

export type VerifyLedgerResult =
  | { readonly ok: true; readonly rounds: number; readonly headHash: string; readonly signaturesChecked: number }
  | { readonly ok: false; readonly round: number; readonly problem: string; readonly roundsVerified: number };

/** The structural policy of `fedgate verify`: what every round must meet whatever the sites chose. */
const STRUCTURAL_POLICY: Omit<SitePolicy, 'pinnedTaskHashes'> = {
  minParticipants: 1,
  minThreshold: 1,
  allowPlaintext: true,
  minToleratedColluders: 0,
  minNeighbourDegree: 0,
  completeGraphUpTo: 0,
  requireTwoThirdsThreshold: false,
};

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
  const store = options.recomputeModels === false && options.task !== undefined ? undefined : await ModelStore.open(options.stateDirectory);
  let chain: { head: CommitChainHead; taskHash: Uint8Array; federationId: string } | undefined;
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
    const { record: commit, body } = parsed;
    if (chain === undefined) {
      try {
        chain = await chainOrigin(commit.config, store, options.task);
      } catch (error) {
        return fail((error as Error).message);
      }
    }
    const previous = chain.head;
    try {
      const link = verifyCommitLink(parsed, {
        caCertificate,
        revocations: options.revocations ?? [],
        policy: { ...(options.policy ?? STRUCTURAL_POLICY), pinnedTaskHashes: [chain.taskHash] },
        previousHead: previous,
        taskHash: chain.taskHash,
        federationId: chain.federationId,
      });
      signaturesChecked += link.signers.length;
      chain = { ...chain, head: link.head };
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      return fail(describeLinkProblem(error, round, commit.config, previous));
    }
    if (store !== undefined && options.recomputeModels !== false) {
      const problem = await checkRecomputedRound(store, commit.config, body);
      if (problem !== undefined) return fail(problem);
    }
  }
  return { ok: true, rounds: records.length, headHash: records.at(-1)?.recordHash ?? '0'.repeat(64), signaturesChecked };
}

/**
 * Where the ledger must start: the initial model and optimiser state the task pins, the task of round 1
 * (read from the state directory unless given) and round 1's federation.
 */
async function chainOrigin(
  first: RoundConfig,
  store: ModelStore | undefined,
  given: VerifyLedgerOptions['task'],
): Promise<{ head: CommitChainHead; taskHash: Uint8Array; federationId: string }> {
  const taskHash = toHex(first.taskHash);
  let document = given?.document;
  if (document === undefined) {
    if (store === undefined || !(await store.has(taskHash))) {
      throw new Error(`the task document ${taskHash} of round 1 is not in the state directory's models/: copy models/ or pass the task (--task)`);
    }
    document = parseTaskDocument(JSON.parse((await store.get(taskHash)).toString('utf8')));
  }
  const task = requirePinnedTask(document);
  // The parameter count fixes the size of a FedAvgM velocity: from the stored initial model, or the task.
  const initialModel = store !== undefined && (await store.has(task.initialModel.sha256)) ? await store.get(task.initialModel.sha256) : undefined;
  const parameters = initialModel === undefined ? taskParameterCount(task, given?.forwardModel) : decodeWeights(weightsLayout(initialModel), initialModel).length;
  const start = chainStart(task, parameters);
  return { head: { counter: 0n, modelHash: fromHex(start.modelHash), optimizerStateHash: fromHex(start.optimizerStateHash) }, taskHash: first.taskHash, federationId: first.federationId };
}

/** The verifier's words for a failed link: a broken model or optimiser chain names the rounds involved. */
function describeLinkProblem(error: SecAggError, round: number, config: RoundConfig, previous: CommitChainHead): string {
  const produced = round === 1 ? 'the task pins initial' : `round ${round - 1} produced`;
  if (error.reason === 'CHAIN_MODEL_MISMATCH') {
    return `round ${round} starts from model ${toHex(config.modelHash).slice(0, 16)}..., but ${produced} ${round === 1 ? 'model ' : ''}${toHex(previous.modelHash).slice(0, 16)}...`;
  }
  if (error.reason === 'CHAIN_OPTIMIZER_STATE_MISMATCH') {
    return `round ${round} starts from server-optimiser state ${toHex(config.optimizerStateHash).slice(0, 16)}..., but ${produced} ${round === 1 ? 'state ' : ''}${toHex(previous.optimizerStateHash).slice(0, 16)}...`;
  }
  return error.message;
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
