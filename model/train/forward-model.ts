/**
 * The forward computation a training plan is derived from, whether it came from the model zoo or from a
 * user's ONNX file: nodes from 'input' to logits, the parameters they read, constants, initial values.
 */
import type { NodeIR, TensorIR } from '../onnx/ir.js';

/** How a parameter changes in a training step. */
export type ParameterRole =
  /** Updated by the optimiser from its gradient. */
  | 'trainable'
  /** BatchNorm running statistics: replaced by the step's blended batch statistics, no gradient. */
  | 'running_mean'
  | 'running_var';

export interface ParameterSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: ParameterRole;
}

/**
 * One of several named data inputs (a task whose `inputs` name several, or int64 ids): fed to the plan
 * graphs as `input.<name>` with shape [batch, ...shape]. A single float32 input keeps the one 'input'.
 */
export interface NamedInput {
  /** The task's input name (the forward ONNX model's graph input name). */
  readonly name: string;
  /** Source name of the value in `nodes`. */
  readonly source: string;
  readonly dtype: 'float32' | 'int64';
  /** Shape of one example (without the batch dimension). */
  readonly shape: readonly number[];
  /** int64 ids that only index embedding tables (Gather): valid ids are [0, idRange). */
  readonly idRange?: number;
}

export interface ForwardModel {
  /** Topologically sorted nodes reading `input`, the parameters and the constants. */
  readonly nodes: readonly NodeIR[];
  /** Initializers that are not parameters (shape constants, frozen values). */
  readonly constants: readonly TensorIR[];
  readonly parameters: readonly ParameterSpec[];
  /** Source name of the (already normalised) input value, shape [batch, ...inputShape]. */
  readonly input: string;
  readonly inputShape: readonly number[];
  /**
   * Set when the model reads several named inputs or int64 ids; `input` and `inputShape` then repeat the
   * first of them.
   */
  readonly namedInputs?: readonly NamedInput[];
  /** Source name of the logits, shape [batch, classes]. */
  readonly logits: string;
  readonly classes: number;
  /** Flat initial values in `parameters` order. */
  readonly initialParameters: Float32Array;
  /** What the operator should know about an imported model (e.g. it looks BatchNorm-fused). */
  readonly warnings?: readonly string[];
}

export const isTrainable = (parameter: ParameterSpec): boolean => parameter.role === 'trainable';
