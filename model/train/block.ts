/**
 * trainBlock: S training steps in one session.run. An ONNX Loop (Loop-16) carries the parameters,
 * optimiser state and the running loss/correct sums; iteration i trains on input[i] and label[i].
 * The body is the same step graph as trainStep, so both give identical updates. Its names carry a
 * 'block/' prefix because a subgraph may not redefine a name of its enclosing graph (ONNX IR, "Names
 * Within a Graph").
 */
import { GraphBuilder, attr } from '../graph/builder.js';
import type { GraphIR } from '../onnx/ir.js';
import { DataType } from '../onnx/schema.js';
import type { TaskDocument } from '../task.js';
import { BATCH_DIM_PARAM, addLabelInput, stateInfo } from './graphs.js';
import {
  CORRECT,
  LABEL,
  LEARNING_RATE,
  LOSS,
  PROXIMAL_MU,
  globalName,
  planInputs,
  updatedName,
  type PreparedModel,
} from './prepare.js';
import { emitTrainStep } from './step.js';

const BODY_PREFIX = 'block/';
export const BLOCK_DIM_PARAM = 'steps';

function buildBody(prepared: PreparedModel, task: TaskDocument, outerNames: Iterable<string>, randomSeed: Uint8Array | undefined): GraphIR {
  const b = new GraphBuilder('fedgate_train_block_body', BODY_PREFIX);
  b.reserve(outerNames);
  const carried = [...prepared.forward.parameters, ...stateInfo(prepared, task)];
  const iteration = b.addInput(`${BODY_PREFIX}iteration`, DataType.INT64, []);
  const condition = b.addInput(`${BODY_PREFIX}condition`, DataType.BOOL, []);
  const inName = (name: string): string => `${BODY_PREFIX}in/${name}`;
  const outName = (name: string): string => `${BODY_PREFIX}out/${name}`;
  for (const t of carried) b.addInput(inName(t.name), DataType.FLOAT, t.shape);
  const lossSoFar = b.addInput(`${BODY_PREFIX}in/loss`, DataType.FLOAT, []);
  const correctSoFar = b.addInput(`${BODY_PREFIX}in/correct`, DataType.FLOAT, []);
  b.reserve([...carried.map((t) => outName(t.name)), outName('loss'), outName('correct'), outName('condition')]);

  const inputs = planInputs(prepared.forward).map((input) => b.op('Gather', [input.name, iteration], { axis: attr.int(0) }, input.name));
  const label = b.op('Gather', [LABEL, iteration], { axis: attr.int(0) }, 'label');
  const stepLoss = b.fresh('loss');
  const stepCorrect = b.fresh('correct');
  const proximal = task.training.proximalMu > 0;
  emitTrainStep(b, prepared, task.optimizer, {
    inputs,
    label,
    learningRate: LEARNING_RATE,
    ...(proximal ? { proximalMu: PROXIMAL_MU } : {}),
    parameter: inName,
    global: globalName,
    state: inName,
    updatedName: outName,
    loss: stepLoss,
    correct: stepCorrect,
  }, randomSeed);
  b.appendNode('Identity', [condition], [outName('condition')], {});
  b.appendNode('Add', [lossSoFar, stepLoss], [outName('loss')], {});
  b.appendNode('Add', [correctSoFar, stepCorrect], [outName('correct')], {});
  b.addOutput(outName('condition'), DataType.BOOL, []);
  for (const t of carried) b.addOutput(outName(t.name), DataType.FLOAT, t.shape);
  b.addOutput(outName('loss'), DataType.FLOAT, []);
  b.addOutput(outName('correct'), DataType.FLOAT, []);
  return b.build();
}

export function buildTrainBlockGraph(prepared: PreparedModel, task: TaskDocument, randomSeed?: Uint8Array): GraphIR {
  const b = new GraphBuilder('fedgate_train_block');
  const states = stateInfo(prepared, task);
  const carried = [...prepared.forward.parameters, ...states];
  b.reserve([LOSS, CORRECT, ...carried.map((t) => updatedName(t.name))]);
  for (const t of carried) b.addInput(t.name, DataType.FLOAT, t.shape);
  const inputs = planInputs(prepared.forward);
  for (const input of inputs) b.addInput(input.name, input.elemType, [BLOCK_DIM_PARAM, BATCH_DIM_PARAM, ...input.shape]);
  addLabelInput(b, prepared, [BLOCK_DIM_PARAM, BATCH_DIM_PARAM]);
  b.addInput(LEARNING_RATE, DataType.FLOAT, []);
  if (task.training.proximalMu > 0) {
    for (const p of prepared.trainable) b.addInput(globalName(p.name), DataType.FLOAT, p.shape);
    b.addInput(PROXIMAL_MU, DataType.FLOAT, []);
  }
  const first = (inputs[0] as (typeof inputs)[number]).name;
  const steps = b.op('Reshape', [b.op('Shape', [first], { end: attr.int(1) }), b.int64s([])], {}, 'steps');
  const zero = b.scalar(0);
  const outerNames = [
    ...carried.map((t) => t.name),
    ...carried.map((t) => updatedName(t.name)),
    ...inputs.map((input) => input.name),
    LABEL,
    LEARNING_RATE,
    PROXIMAL_MU,
    LOSS,
    CORRECT,
    steps,
    zero,
    ...prepared.trainable.map((p) => globalName(p.name)),
  ];
  const body = buildBody(prepared, task, outerNames, randomSeed);
  b.appendNode(
    'Loop',
    [steps, '', ...carried.map((t) => t.name), zero, zero],
    [...carried.map((t) => updatedName(t.name)), LOSS, CORRECT],
    { body: attr.graph(body) },
  );
  for (const t of carried) b.addOutput(updatedName(t.name), DataType.FLOAT, t.shape);
  b.addOutput(LOSS, DataType.FLOAT, []);
  b.addOutput(CORRECT, DataType.FLOAT, []);
  return b.build('fedgate training block: S training steps in one ONNX Loop');
}
