/**
 * The global model of a committed round as a plain inference ONNX model (input -> logits,
 * probabilities; normalisation included), read from a coordinator state directory. Round N is the model
 * that came out of ledger record N; round 0 is the initial model.
 */
import { buildTrainingPlan } from '../../model/plan.js';
import { exportInferenceModel } from '../../model/export.js';
import type { TaskDocument } from '../../model/task.js';
import { decodeWeights } from '../../model/weight-codec.js';
import { Ledger } from '../state/ledger.js';
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

/** `round` undefined = the latest committed round. */
export async function exportModelFromState(stateDirectory: string, task: TaskDocument, forwardModel: Uint8Array | undefined, round?: number): Promise<ExportedModel> {
  const ledger = await Ledger.open(stateDirectory);
  const state = await readFederationState(stateDirectory);
  if (state === undefined) throw new StateError('NOT_FOUND', `${stateDirectory} holds no federation state: is it a coordinator's state_dir?`);
  const wanted = round ?? ledger.length;
  if (!Number.isSafeInteger(wanted) || wanted < 0 || wanted > ledger.length) {
    throw new StateError('NOT_FOUND', `round ${String(round)} is not committed: the ledger holds rounds 1..${ledger.length} (0 is the initial model)`);
  }
  let modelHash: string;
  if (wanted === 0) {
    modelHash = ledger.length === 0 ? state.modelHash : parseLedgerCommit((await ledger.read(1)).body, 'ledger record 1').body.previousModelHash;
  } else {
    modelHash = parseLedgerCommit((await ledger.read(wanted)).body, `ledger record ${wanted}`).body.newModelHash;
  }
  const store = await ModelStore.open(stateDirectory);
  const plan = buildTrainingPlan(task, forwardModel);
  const parameters = decodeWeights(plan, await store.get(modelHash));
  return { onnx: exportInferenceModel(task, parameters, forwardModel), round: wanted, modelHash, parameters };
}
