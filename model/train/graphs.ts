/**
 * The stand-alone graphs of a training plan: trainStep (one optimiser step) and evalStep (summed loss
 * and correct count in inference mode). Interface names are the contract with participant/trainer.
 */
import { GraphBuilder } from '../graph/builder.js';
import type { GraphIR } from '../onnx/ir.js';
import { DataType } from '../onnx/schema.js';
import { lowerForward } from '../autodiff/tape.js';
import type { TaskDocument } from '../task.js';
import { emitEvaluation, evaluationOutputs, labelTensorType } from './objective.js';
import { optimizerStateInfo, type TensorInfo } from './optimizer.js';
import {
  CORRECT,
  LABEL,
  LEARNING_RATE,
  LOSS,
  LOSS_SUM,
  PROXIMAL_MU,
  globalName,
  planInputs,
  updatedName,
  type PreparedModel,
} from './prepare.js';
import { emitTrainStep } from './step.js';

export const BATCH_DIM_PARAM = 'batch';

export function parameterInfo(prepared: PreparedModel): TensorInfo[] {
  return prepared.forward.parameters.map((p) => ({ name: p.name, shape: [...p.shape] }));
}

export function stateInfo(prepared: PreparedModel, task: TaskDocument): TensorInfo[] {
  return optimizerStateInfo(task.optimizer, prepared.trainable);
}

function addParameterInputs(b: GraphBuilder, prepared: PreparedModel): void {
  for (const p of prepared.forward.parameters) b.addInput(p.name, DataType.FLOAT, p.shape);
}

export function buildTrainStepGraph(prepared: PreparedModel, task: TaskDocument, randomSeed?: Uint8Array): GraphIR {
  const b = new GraphBuilder('fedgate_train_step');
  const states = stateInfo(prepared, task);
  const updated = [...prepared.forward.parameters, ...states];
  b.reserve([LOSS, CORRECT, ...updated.map((t) => updatedName(t.name))]);
  addParameterInputs(b, prepared);
  for (const s of states) b.addInput(s.name, DataType.FLOAT, s.shape);
  const inputs = planInputs(prepared.forward);
  for (const input of inputs) b.addInput(input.name, input.elemType, [BATCH_DIM_PARAM, ...input.shape]);
  addLabelInput(b, prepared, [BATCH_DIM_PARAM]);
  b.addInput(LEARNING_RATE, DataType.FLOAT, []);
  const proximal = task.training.proximalMu > 0;
  if (proximal) {
    for (const p of prepared.trainable) b.addInput(globalName(p.name), DataType.FLOAT, p.shape);
    b.addInput(PROXIMAL_MU, DataType.FLOAT, []);
  }
  emitTrainStep(b, prepared, task.optimizer, {
    inputs: inputs.map((input) => input.name),
    label: LABEL,
    learningRate: LEARNING_RATE,
    ...(proximal ? { proximalMu: PROXIMAL_MU } : {}),
    parameter: (name) => name,
    global: globalName,
    state: (name) => name,
    updatedName,
    loss: LOSS,
    correct: CORRECT,
  }, randomSeed);
  for (const t of updated) b.addOutput(updatedName(t.name), DataType.FLOAT, t.shape);
  b.addOutput(LOSS, DataType.FLOAT, []);
  b.addOutput(CORRECT, DataType.FLOAT, []);
  return b.build(`fedgate training step: forward, ${prepared.loss.kind} loss, backward and optimiser update in one graph`);
}

/** 'label' with the batch dimensions `lead`: int64 class indices, or float32 targets (labelTensorType). */
export function addLabelInput(b: GraphBuilder, prepared: PreparedModel, lead: readonly string[]): void {
  const { elemType, perExample } = labelTensorType(prepared.loss, prepared.forward.classes);
  b.addInput(LABEL, elemType, [...lead, ...perExample]);
}

export function buildEvalStepGraph(prepared: PreparedModel): GraphIR {
  const b = new GraphBuilder('fedgate_eval_step');
  const extra = evaluationOutputs(prepared.loss);
  b.reserve([LOSS_SUM, CORRECT, ...extra]);
  addParameterInputs(b, prepared);
  const inputs = planInputs(prepared.forward);
  for (const input of inputs) b.addInput(input.name, input.elemType, [BATCH_DIM_PARAM, ...input.shape]);
  addLabelInput(b, prepared, [BATCH_DIM_PARAM]);
  const { forward } = prepared;
  const bindings = new Map<string, string>(inputs.map((input) => [input.source, input.name]));
  for (const p of forward.parameters) bindings.set(p.name, p.name);
  const pass = lowerForward(forward.nodes, forward.constants, prepared.facts, bindings, {
    builder: b,
    mode: 'eval',
    floatType: DataType.FLOAT,
  });
  const logits = pass.values.get(forward.logits) as string;
  emitEvaluation(b, prepared.loss, logits, LABEL, forward.classes);
  for (const name of [LOSS_SUM, CORRECT, ...extra]) b.addOutput(name, DataType.FLOAT, []);
  return b.build(`fedgate evaluation step: summed ${prepared.loss.kind} loss, correct count${extra.length === 0 ? '' : ` and ${extra.join(', ')}`}, inference mode`);
}
