/**
 * Checks a forward model once before any graph is built from it: op support (every offender named at
 * once), names that would collide with the training-plan interface, static shapes, and the logits shape.
 */
import { ModelError } from '../errors.js';
import { DataType, type DataTypeCode } from '../onnx/schema.js';
import { BATCH, formatShape, type ValueFacts } from '../autodiff/facts.js';
import { checkSupported, constantFacts, inferFacts, valuesRequiringGrad } from '../autodiff/tape.js';
import { isTrainable, type ForwardModel, type ParameterSpec } from './forward-model.js';

/** A data input of the plan graphs: the model value it binds, its plan name, type and example shape. */
export interface PlanInput {
  readonly source: string;
  readonly name: string;
  readonly elemType: DataTypeCode;
  readonly shape: readonly number[];
}

/** The plan's data inputs: the one float32 'input', or 'input.<name>' for every named input. */
export function planInputs(forward: ForwardModel): PlanInput[] {
  if (forward.namedInputs === undefined) return [{ source: forward.input, name: INPUT, elemType: DataType.FLOAT, shape: forward.inputShape }];
  return forward.namedInputs.map((input) => ({
    source: input.source,
    name: namedInputName(input.name),
    elemType: input.dtype === 'int64' ? DataType.INT64 : DataType.FLOAT,
    shape: input.shape,
  }));
}
import type { ResolvedLoss } from '../task.js';

/** Value names of the plan interface (contract with participant/trainer). */
export const INPUT = 'input';
export const LABEL = 'label';
export const LEARNING_RATE = 'learning_rate';
export const PROXIMAL_MU = 'proximal_mu';
export const LOSS = 'loss';
export const LOSS_SUM = 'loss_sum';
export const CORRECT = 'correct';
/** evalStep outputs of binary_cross_entropy tasks: confusion counts summed over every label (micro-F1). */
export const TRUE_POSITIVES = 'true_positives';
export const FALSE_POSITIVES = 'false_positives';
export const FALSE_NEGATIVES = 'false_negatives';
/** evalStep outputs of regression tasks: sums over every target element (R^2, MSE, MAE). */
export const SQUARED_ERROR_SUM = 'squared_error_sum';
export const ABSOLUTE_ERROR_SUM = 'absolute_error_sum';
export const TARGET_SUM = 'target_sum';
export const TARGET_SQUARE_SUM = 'target_square_sum';
export const LOGITS = 'logits';
export const PROBABILITIES = 'probabilities';
/** Plan input of a named model input (ForwardModel.namedInputs). */
export const namedInputName = (name: string): string => `input.${name}`;
export const updatedName = (name: string): string => `updated.${name}`;
export const globalName = (name: string): string => `global.${name}`;

const RESERVED = new Set([
  INPUT, LABEL, LEARNING_RATE, PROXIMAL_MU, LOSS, LOSS_SUM, CORRECT, LOGITS, PROBABILITIES,
  TRUE_POSITIVES, FALSE_POSITIVES, FALSE_NEGATIVES, SQUARED_ERROR_SUM, ABSOLUTE_ERROR_SUM, TARGET_SUM, TARGET_SQUARE_SUM,
]);

const PLAIN_CROSS_ENTROPY: ResolvedLoss = { kind: 'cross_entropy', classWeights: undefined, labelSmoothing: 0 };

/** What one output of the model means under each loss, for the message of a model that does not fit. */
function outputMeaning(loss: ResolvedLoss): string {
  switch (loss.kind) {
    case 'cross_entropy':
      return 'one logit per class (loss cross_entropy)';
    case 'binary_cross_entropy':
      return 'one logit per label (loss binary_cross_entropy)';
    default:
      return `one output per regression target (loss ${loss.kind})`;
  }
}
const RESERVED_PREFIXES = ['updated.', 'global.', 'momentum.', 'adam.', 'grad.'];

export interface PreparedModel {
  readonly forward: ForwardModel;
  readonly facts: ReadonlyMap<string, ValueFacts>;
  readonly requiresGrad: ReadonlySet<string>;
  readonly trainable: readonly ParameterSpec[];
  /** The loss the plan trains with; fixes the dtype of 'label' (int64 [B] or float32 [B, outputs]). */
  readonly loss: ResolvedLoss;
}

function checkParameterNames(parameters: readonly ParameterSpec[], named: boolean): void {
  const seen = new Set<string>();
  // 'input.' names the plan inputs of named inputs only; single-input models keep every name they had.
  const prefixes = named ? [...RESERVED_PREFIXES, 'input.'] : RESERVED_PREFIXES;
  for (const { name } of parameters) {
    if (RESERVED.has(name) || prefixes.some((prefix) => name.startsWith(prefix))) {
      throw new ModelError(
        'INVALID_ARGUMENT',
        'UNSUPPORTED_MODEL',
        `parameter '${name}' collides with a training-plan interface name; rename it (reserved: ${[...RESERVED].join(', ')} and the prefixes ${prefixes.join(', ')})`,
      );
    }
    if (seen.has(name)) throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `parameter '${name}' is defined twice`);
    seen.add(name);
  }
}

export function prepareModel(forward: ForwardModel, loss: ResolvedLoss = PLAIN_CROSS_ENTROPY): PreparedModel {
  checkParameterNames(forward.parameters, forward.namedInputs !== undefined);
  const trainable = forward.parameters.filter(isTrainable);
  checkSupported(forward.nodes, trainable.map((p) => p.name));
  const seed = constantFacts(forward.constants);
  for (const input of planInputs(forward)) seed.set(input.source, { elemType: input.elemType, shape: [BATCH, ...input.shape] });
  for (const p of forward.parameters) seed.set(p.name, { elemType: DataType.FLOAT, shape: p.shape });
  const facts = inferFacts(forward.nodes, seed);
  const logits = facts.get(forward.logits);
  if (logits === undefined || logits.shape.length !== 2 || logits.shape[0] !== BATCH || logits.shape[1] !== forward.classes) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'SHAPE_MISMATCH',
      `model output '${forward.logits}' has shape ${logits === undefined ? 'unknown' : formatShape(logits.shape)}; expected [batch, ${forward.classes}] (${outputMeaning(loss)}, one per entry of the task's labels)`,
    );
  }
  if (logits.elemType !== DataType.FLOAT) {
    throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `model output '${forward.logits}' must be float32`);
  }
  return { forward, facts, requiresGrad: valuesRequiringGrad(forward.nodes, trainable.map((p) => p.name)), trainable, loss };
}
