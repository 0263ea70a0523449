/**
 * What the trainer needs from a training plan. model/'s TrainingPlan satisfies this interface
 * structurally; the trainer names only the fields it uses so that it can run any graph that follows the
 * train-step contract (model/index.ts, TrainingPlan):
 *   trainStep inputs:  every parameter and optimizer-state tensor by name, 'input' float32 [B, ...],
 *                      'label' int64 [B], 'learning_rate' float32 []; with FedProx also 'global.<param>'
 *                      and 'proximal_mu' float32 [].
 *   trainStep outputs: 'updated.<name>' for every parameter and optimizer state, 'loss' (batch mean),
 *                      'correct' (count of correct argmax predictions).
 *   trainBlock:        the same over [S, B, ...] / [S, B] (S steps per run); 'loss' = sum of S means.
 *   evalStep:          parameters, 'input', 'label' -> 'loss_sum', 'correct'.
 */
import { invalidArgument } from './errors.js';

export interface PlanTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface TrainerPlan {
  readonly parameters: readonly PlanTensor[];
  readonly optimizerState: readonly PlanTensor[];
  readonly trainStep: Uint8Array;
  readonly trainBlock?: Uint8Array;
  readonly evalStep: Uint8Array;
  /** By named int64 input: valid ids are [0, n); checked before a dataset reaches the worker. */
  readonly idRanges?: Readonly<Record<string, number>>;
  /**
   * DP-SGD (model/ DpSgdPlan): gradientSum (parameters, data, 'label' -> 'clipped_sum.<name>', 'loss',
   * 'correct') and update (parameters, optimiser state, 'noisy_sum.<name>', 'expected_batch',
   * 'learning_rate' -> 'updated.<name>'), with the task's record-level parameters. When present,
   * train() runs stepsPerRound Poisson-sampled DP-SGD steps instead of epochs of minibatches.
   */
  readonly dpSgd?: {
    readonly gradientSum: Uint8Array;
    readonly update: Uint8Array;
    readonly clipNorm: number;
    readonly noiseMultiplier: number;
    readonly samplingRate: number;
    readonly stepsPerRound: number;
    readonly dimension: number;
  };
}

/** Offsets of each tensor in the flat buffer [parameters..., optimizer state...]. */
export interface TensorLayout {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

export interface PlanLayout {
  readonly parameters: readonly TensorLayout[];
  readonly optimizerState: readonly TensorLayout[];
  /** Number of parameter values (the length of the flat parameter vector). */
  readonly parameterSize: number;
  /** Parameter values + optimizer-state values. */
  readonly totalSize: number;
}

/** Validates names and shapes and lays the tensors out one after another. */
export function planLayout(plan: Pick<TrainerPlan, 'parameters' | 'optimizerState'>): PlanLayout {
  const seen = new Set<string>();
  let offset = 0;
  const place = (tensors: readonly PlanTensor[], field: string): TensorLayout[] =>
    tensors.map((tensor, index) => {
      if (typeof tensor.name !== 'string' || tensor.name === '' || seen.has(tensor.name)) {
        throw invalidArgument('PLAN_INVALID', `plan.${field}[${index}].name must be a unique non-empty string, got ${JSON.stringify(tensor.name)}`);
      }
      seen.add(tensor.name);
      let size = 1;
      for (const dim of tensor.shape) {
        if (!Number.isInteger(dim) || dim <= 0) {
          throw invalidArgument('PLAN_INVALID', `plan.${field}[${index}] ('${tensor.name}') has shape [${tensor.shape.join(', ')}]; expected positive integer dimensions`);
        }
        size *= dim;
      }
      const placed = { name: tensor.name, shape: [...tensor.shape], offset, size };
      offset += size;
      return placed;
    });
  const parameters = place(plan.parameters, 'parameters');
  const parameterSize = offset;
  const optimizerState = place(plan.optimizerState, 'optimizerState');
  if (parameters.length === 0) throw invalidArgument('PLAN_INVALID', 'plan.parameters is empty; expected at least one trainable tensor');
  return { parameters, optimizerState, parameterSize, totalSize: offset };
}

/** Checks the ONNX byte fields before they are copied to the worker. */
export function checkPlanBytes(plan: TrainerPlan): void {
  for (const field of ['trainStep', 'evalStep'] as const) {
    const bytes = plan[field];
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw invalidArgument('PLAN_INVALID', `plan.${field} must be non-empty ONNX ModelProto bytes (Uint8Array), got ${bytes instanceof Uint8Array ? 'an empty array' : typeof bytes}`);
    }
  }
  if (plan.trainBlock !== undefined && (!(plan.trainBlock instanceof Uint8Array) || plan.trainBlock.length === 0)) {
    throw invalidArgument('PLAN_INVALID', 'plan.trainBlock must be absent or non-empty ONNX ModelProto bytes');
  }
  const dp = plan.dpSgd;
  if (dp !== undefined) {
    for (const field of ['gradientSum', 'update'] as const) {
      if (!(dp[field] instanceof Uint8Array) || dp[field].length === 0) throw invalidArgument('PLAN_INVALID', `plan.dpSgd.${field} must be non-empty ONNX ModelProto bytes`);
    }
    const positive = (value: number): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
    if (!positive(dp.clipNorm) || !positive(dp.noiseMultiplier) || !positive(dp.samplingRate) || dp.samplingRate > 1 || !Number.isInteger(dp.stepsPerRound) || dp.stepsPerRound < 1 || !Number.isInteger(dp.dimension) || dp.dimension < 1) {
      throw invalidArgument('PLAN_INVALID', `plan.dpSgd has clipNorm ${dp.clipNorm}, noiseMultiplier ${dp.noiseMultiplier}, samplingRate ${dp.samplingRate}, stepsPerRound ${dp.stepsPerRound}, dimension ${dp.dimension}; expected C > 0, sigma > 0, q in (0, 1], whole steps >= 1, dimension >= 1`);
    }
  }
}
