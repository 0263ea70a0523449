/**
 * One training step as graph nodes: forward in training mode, the task's loss, backward, optimiser update,
 * BatchNorm running statistics. Emitted into any builder, so the same code makes the stand-alone
 * trainStep graph and the body of trainBlock's Loop.
 */
import type { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../onnx/schema.js';
import { GradContext } from '../autodiff/rule.js';
import { backpropagate, lowerForward } from '../autodiff/tape.js';
import type { OptimizerSpec } from '../task.js';
import { emitObjective } from './objective.js';
import { emitOptimizerUpdate, seedsDescent } from './optimizer.js';
import { planInputs, type PreparedModel } from './prepare.js';

export interface StepBindings {
  /** The bound value of every plan input, in planInputs order. */
  readonly inputs: readonly string[];
  readonly label: string;
  readonly learningRate: string;
  readonly proximalMu?: string;
  readonly parameter: (name: string) => string;
  readonly global: (name: string) => string;
  readonly state: (name: string) => string;
  /** Name for the updated value of a parameter or optimiser state. */
  readonly updatedName: (name: string) => string;
  readonly loss: string;
  readonly correct: string;
}

/** @param randomSeed secret seed material for the step's random ops (EmitContext.randomSeed) */
export function emitTrainStep(b: GraphBuilder, prepared: PreparedModel, optimizer: OptimizerSpec, io: StepBindings, randomSeed?: Uint8Array): void {
  const { forward } = prepared;
  const bindings = new Map<string, string>(planInputs(forward).map((input, i) => [input.source, io.inputs[i] as string]));
  for (const p of forward.parameters) bindings.set(p.name, io.parameter(p.name));
  const pass = lowerForward(forward.nodes, forward.constants, prepared.facts, bindings, {
    builder: b,
    mode: 'train',
    floatType: DataType.FLOAT,
    ...(randomSeed === undefined ? {} : { randomSeed }),
  });
  const logits = pass.values.get(forward.logits) as string;
  const descentScale = seedsDescent(optimizer) ? b.op('Neg', [io.learningRate], {}, 'descent_scale') : undefined;
  const loss = emitObjective(b, prepared.loss, logits, io.label, forward.classes, { loss: io.loss, correct: io.correct }, descentScale);
  const grads = backpropagate(pass.tape, new Map([[logits, loss.gradLogits]]), prepared.requiresGrad, new GradContext(b, DataType.FLOAT));
  const gradient = (name: string): string | undefined => grads.get(io.parameter(name));
  emitOptimizerUpdate(b, optimizer, prepared.trainable, { ...io, gradient });
  for (const p of forward.parameters) {
    if (p.role === 'trainable') continue;
    const update = pass.stateUpdates.get(p.name) ?? io.parameter(p.name);
    b.appendNode('Identity', [update], [io.updatedName(p.name)], {});
  }
}
