/**
 * The global model of a committed round as a plain inference ONNX model (input -> logits,
 * probabilities; normalisation included), read from a coordinator state directory without a running
 * coordinator (`fedgate export --state DIR`). Round N is the model that came out of ledger record N;
 * round 0 is the initial model the task pins.
 *
 * What is exported is checked against the ledger first, reading only (a coordinator may be running on
 * the directory, or a backup being copied): the hash chain of the records, the chain of models they
 * commit to (record 1 starts from the task's pinned initial model, each record from the model of the one
 * before), and the model bytes' SHA-256 against the hash the record commits to. The task (and an imported
 * model's forward ONNX file) comes from the state directory itself, checked against the task hash the
 * records carry. With the federation's CA, the whole ledger is verified as `fedgate verify` does
 * (signatures, quorum, certificates, recomputed models) before anything is exported.
 */
import { join } from 'node:path';
import { toHex } from '../../crypto/bytes.js';
import { sha256Hex } from '../../crypto/hash.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { exportInferenceModel } from '../../model/export.js';
import { parseTaskDocument, requirePinnedTask, taskHash, type PinnedTaskDocument, type TaskDocument } from '../../model/task.js';
import { decodeWeights } from '../../model/weight-codec.js';
import { verifyLedger, type Revocation } from '../audit/verify-ledger.js';
import { findChainProblem, readLedgerDirectory } from '../state/ledger.js';
import { ModelStore } from '../state/model-store.js';
import { StateError } from '../state/state-error.js';
import { parseLedgerCommit } from './ledger-commit.js';
import { readFederationState } from './federation-state.js';

export interface ExportedModel {
  readonly onnx: Uint8Array;
  readonly round: number;
  readonly modelHash: string;
  readonly parameters: Float32Array;
}

export interface CommittedModelExport extends ExportedModel {
  /** SHA-256 (hex) of `onnx`. */
  readonly onnxSha256: string;
  /** Records in the ledger. */
  readonly rounds: number;
  readonly taskHash: string;
  /** Head record hash of the ledger the model was checked against. */
  readonly headHash: string;
  /** Whether the ledger's signatures were verified too (a CA was given), or its hashes only. */
  readonly verification: 'hashes' | 'signatures';
}

export interface ExportOptions {
  /** @default the latest committed round */
  readonly round?: number;
  /** The federation's CA (PEM): verify the whole ledger as `fedgate verify` does before exporting. */
  readonly caPem?: string;
  /** CRL entries for that verification. */
  readonly revocations?: readonly Revocation[];
  /** The task, when it is not in the state directory's models/ (must hash to what the ledger names). */
  readonly task?: { readonly document: TaskDocument; readonly forwardModel?: Uint8Array };
}

/** The ledger does not vouch for the model (a StateError CORRUPT: the message names the record and the check). */
export class LedgerCheckError extends StateError {
  constructor(message: string) {
    super('CORRUPT', message);
    this.name = 'LedgerCheckError';
  }
}

export async function exportCommittedModel(stateDirectory: string, options: ExportOptions = {}): Promise<CommittedModelExport> {
  const ledgerDirectory = join(stateDirectory, 'ledger');
  const records = await readLedgerDirectory(ledgerDirectory).catch((error: unknown) => {
    throw new StateError('NOT_FOUND', `cannot read the ledger in ${ledgerDirectory} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): is ${stateDirectory} a coordinator's state_dir?`, { cause: error });
  });
  const chainProblem = findChainProblem(records);
  if (chainProblem !== undefined) throw new LedgerCheckError(`${ledgerDirectory}: ${chainProblem}; run \`fedgate verify\` on it and restore the state directory from a backup`);
  const wanted = options.round ?? records.length;
  if (!Number.isSafeInteger(wanted) || wanted < 0 || wanted > records.length) {
    throw new StateError('NOT_FOUND', `round ${String(options.round)} is not committed in ${stateDirectory}: its ledger holds rounds 1..${records.length} (0 is the initial model)`);
  }
  const commits = records.map((record) => parseLedgerCommit(record.body, `ledger record ${record.sequence}`));
  const state = await readFederationState(stateDirectory);
  const taskHex = commits[0] === undefined ? state?.taskHash : toHex(commits[0].record.config.taskHash);
  if (taskHex === undefined) throw new StateError('NOT_FOUND', `${stateDirectory} holds neither ledger records nor federation.json: is it a coordinator's state_dir?`);
  const store = await ModelStore.openReadOnly(stateDirectory);
  const { task, forwardModel } = await storedTask(store, taskHex, options.task);

  // The models the records commit to form one chain from the task's pinned initial model.
  let previous = task.initialModel.sha256;
  for (const [index, commit] of commits.entries()) {
    const { body, record } = commit;
    if (toHex(record.config.taskHash) !== taskHex) throw new LedgerCheckError(`ledger record ${index + 1} trains task ${toHex(record.config.taskHash)}, record 1 task ${taskHex}: one ledger holds one task`);
    if (body.previousModelHash !== previous) {
      throw new LedgerCheckError(`ledger record ${index + 1} starts from model ${body.previousModelHash}, but ${index === 0 ? 'the task pins initial model' : `record ${index} produced`} ${previous}`);
    }
    previous = body.newModelHash;
  }
  let verification: CommittedModelExport['verification'] = 'hashes';
  if (options.caPem !== undefined) {
    const result = await verifyLedger({
      stateDirectory,
      caPem: options.caPem,
      revocations: options.revocations ?? [],
      ...(options.task === undefined ? {} : { task: options.task }),
    });
    if (!result.ok) throw new LedgerCheckError(`ledger INVALID at round ${result.round}: ${result.problem}`);
    verification = 'signatures';
  }
  const modelHash = wanted === 0 ? task.initialModel.sha256 : (commits[wanted - 1] as (typeof commits)[number]).body.newModelHash;
  // ModelStore.get refuses bytes whose SHA-256 is not the hash the record commits to.
  const bytes = await store.get(modelHash);
  const plan = buildTrainingPlan(task, forwardModel);
  const parameters = decodeWeights(plan, bytes);
  const onnx = exportInferenceModel(task, parameters, forwardModel);
  return {
    onnx,
    onnxSha256: sha256Hex(onnx),
    round: wanted,
    modelHash,
    parameters,
    rounds: records.length,
    taskHash: taskHex,
    headHash: records.at(-1)?.recordHash ?? '0'.repeat(64),
    verification,
  };
}

/** The task the ledger names: from `given` (checked against the hash) or the state directory's models/. */
async function storedTask(
  store: Pick<ModelStore, 'get' | 'has'>,
  hash: string,
  given: ExportOptions['task'],
): Promise<{ task: PinnedTaskDocument; forwardModel: Uint8Array | undefined }> {
  if (given !== undefined) {
    const actual = taskHash(given.document, given.forwardModel);
    if (actual !== hash) throw new LedgerCheckError(`the task given hashes to ${actual}, but the ledger trains task ${hash}`);
    return { task: requirePinnedTask(given.document), forwardModel: given.forwardModel };
  }
  if (!(await store.has(hash))) throw new StateError('NOT_FOUND', `the task document ${hash} is not in the state directory's models/: copy models/ or pass the task`);
  const task = requirePinnedTask(parseTaskDocument(JSON.parse((await store.get(hash)).toString('utf8'))));
  const forwardModel = task.model.kind === 'onnx' ? await store.get(task.model.modelSha256) : undefined;
  if (taskHash(task, forwardModel) !== hash) throw new LedgerCheckError(`the stored task document ${hash} does not hash to its name after parsing`);
  return { task, forwardModel };
}

/**
 * `round` undefined = the latest committed round. The task is `task` (checked against the ledger's) or
 * the one stored in the state directory.
 */
export async function exportModelFromState(stateDirectory: string, task: TaskDocument | undefined, forwardModel: Uint8Array | undefined, round?: number): Promise<ExportedModel> {
  const exported = await exportCommittedModel(stateDirectory, {
    ...(round === undefined ? {} : { round }),
    ...(task === undefined ? {} : { task: { document: task, ...(forwardModel === undefined ? {} : { forwardModel }) } }),
  });
  return { onnx: exported.onnx, round: exported.round, modelHash: exported.modelHash, parameters: exported.parameters };
}
