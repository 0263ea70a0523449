/**
 * Checks a forward model once before any graph is built from it: op support (every offender named at
 * once), names that would collide with the training-plan interface, static shapes, and the logits shape.
 */
import { ModelError } from '../errors.js';
import { DataType } from '../onnx/schema.js';
import { BATCH, formatShape, type ValueFacts } from '../autodiff/facts.js';
import { checkSupported, constantFacts, inferFacts, valuesRequiringGrad } from '../autodiff/tape.js';
import { isTrainable, type ForwardModel, type ParameterSpec } from './forward-model.js';

/** Value names of the plan interface (contract with participant/trainer). */
export const INPUT = 'input';
export const LABEL = 'label';
export const LEARNING_RATE = 'learning_rate';
export const PROXIMAL_MU = 'proximal_mu';
export const LOSS = 'loss';
export const LOSS_SUM = 'loss_sum';
export const CORRECT = 'correct';
export const LOGITS = 'logits';
export const PROBABILITIES = 'probabilities';
export const updatedName = (name: string): string => `updated.${name}`;
export const globalName = (name: string): string => `global.${name}`;

const RESERVED = new Set([INPUT, LABEL, LEARNING_RATE, PROXIMAL_MU, LOSS, LOSS_SUM, CORRECT, LOGITS, PROBABILITIES]);
const RESERVED_PREFIXES = ['updated.', 'global.', 'momentum.', 'adam.', 'grad.'];

export interface PreparedModel {
  readonly forward: ForwardModel;
  readonly facts: ReadonlyMap<string, ValueFacts>;
  readonly requiresGrad: ReadonlySet<string>;
  readonly trainable: readonly ParameterSpec[];
}

function checkParameterNames(parameters: readonly ParameterSpec[]): void {
  const seen = new Set<string>();
  for (const { name } of parameters) {
    if (RESERVED.has(name) || RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      throw new ModelError(
        'INVALID_ARGUMENT',
        'UNSUPPORTED_MODEL',
        `parameter '${name}' collides with a training-plan interface name; rename it (reserved: ${[...RESERVED].join(', ')} and the prefixes ${RESERVED_PREFIXES.join(', ')})`,
      );
    }
    if (seen.has(name)) throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `parameter '${name}' is defined twice`);
    seen.add(name);
  }
}

export function prepareModel(forward: ForwardModel): PreparedModel {
  checkParameterNames(forward.parameters);
  const trainable = forward.parameters.filter(isTrainable);
  checkSupported(forward.nodes, trainable.map((p) => p.name));
  const seed = constantFacts(forward.constants);
  seed.set(forward.input, { elemType: DataType.FLOAT, shape: [BATCH, ...forward.inputShape] });
  for (const p of forward.parameters) seed.set(p.name, { elemType: DataType.FLOAT, shape: p.shape });
  const facts = inferFacts(forward.nodes, seed);
  const logits = facts.get(forward.logits);
  if (logits === undefined || logits.shape.length !== 2 || logits.shape[0] !== BATCH || logits.shape[1] !== forward.classes) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'SHAPE_MISMATCH',
      `model output '${forward.logits}' has shape ${logits === undefined ? 'unknown' : formatShape(logits.shape)}; expected [batch, ${forward.classes}] (one logit per label)`,
    );
  }
  if (logits.elemType !== DataType.FLOAT) {
    throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `model output '${forward.logits}' must be float32`);
  }
  return { forward, facts, requiresGrad: valuesRequiringGrad(forward.nodes, trainable.map((p) => p.name)), trainable };
}
