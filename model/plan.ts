/**
 * buildTrainingPlan: everything a participant needs to train a task locally with an ONNX Runtime
 * InferenceSession (DESIGN.md "Local training with ONNX Runtime"): the trainStep/evalStep graphs, the
 * parameter and optimiser-state layout, and the initial weights.
 */
import { importForwardModel } from './import.js';
import { encodeModel } from './onnx/codec.js';
import { modelFromGraph } from './graph/model.js';
import { checkNamedInputs, lossOf, parseTaskDocument, verifyForwardModel, type TaskDocument } from './task.js';
import type { ForwardModel } from './train/forward-model.js';
import { buildEvalStepGraph, buildTrainStepGraph, parameterInfo, stateInfo } from './train/graphs.js';
import type { TensorInfo } from './train/optimizer.js';
import { prepareModel, type PreparedModel } from './train/prepare.js';
import { buildTrainBlockGraph } from './train/block.js';
import { buildDpGradientGraph, buildDpUpdateGraph } from './train/dp-graphs.js';
import { buildZooModel } from './zoo/zoo.js';

export interface TrainingPlan {
  /** Trainable parameters and BatchNorm running statistics, in a stable order. */
  readonly parameters: readonly TensorInfo[];
  /** Momentum / Adam moments / Adam step count (float32, all starting at zero); [] for plain SGD. */
  readonly optimizerState: readonly TensorInfo[];
  /**
   * ONNX ModelProto bytes. Inputs: every parameter and optimiser state (by name), 'input' float32
   * [B, ...input.shape] (already normalised) - or, for a task with several named inputs or int64 ids
   * (namedInputsOf), 'input.<name>' of each input's dtype and [B, ...shape] - 'label' int64 [B], 'learning_rate' float32 []; when
   * proximalMu > 0 also 'global.<param>' for every trainable parameter and 'proximal_mu' float32 [].
   * Outputs: 'updated.<name>' for every parameter and optimiser state, 'loss' float32 [] (mean
   * cross-entropy over the batch, without the proximal term), 'correct' float32 [].
   */
  readonly trainStep: Uint8Array;
  /**
   * Same contract with a leading block dimension on 'input' [S, B, ...] and 'label' [S, B]: S steps in
   * one session.run through an ONNX Loop; 'loss' = sum of the S mean losses, 'correct' = total.
   */
  readonly trainBlock?: Uint8Array;
  /** Inputs: parameters, 'input', 'label'. Outputs: 'loss_sum' float32 [], 'correct' float32 []. */
  readonly evalStep: Uint8Array;
  /** Flat, in `parameters` order (deterministic from training.seed; from the file for kind 'onnx'). */
  readonly initialParameters: Float32Array;
  /** By named int64 input: valid ids are [0, n) (the rows of the embedding table it indexes). */
  readonly idRanges?: Readonly<Record<string, number>>;
  /** Present when the task has privacy.recordLevel: the DP-SGD step graphs (train/dp-graphs.ts). */
  readonly dpSgd?: DpSgdPlan;
}

/**
 * DP-SGD as a plan: the task's record-level parameters and the two graphs of a step.
 *   gradientSum inputs: every parameter, the data inputs [B, ...] and 'label' as in trainStep (B may be
 *     any size >= 1); outputs 'clipped_sum.<name>' for every trainable parameter, 'loss' (batch mean of
 *     the per-example losses) and 'correct'.
 *   update inputs: every parameter and optimiser state, 'noisy_sum.<name>', 'expected_batch' float32 []
 *     (q x N), 'learning_rate' (and FedProx's inputs); outputs 'updated.<name>'.
 * The caller adds the noise between the two (crypto/dp addSnappedGaussianNoise), never the graph.
 */
export interface DpSgdPlan {
  readonly gradientSum: Uint8Array;
  readonly update: Uint8Array;
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly stepsPerRound: number;
  /** Trainable values per example gradient: the dimension d of the noised sum (snapped sensitivity). */
  readonly dimension: number;
}

/** The forward model a task describes (zoo model, or the supplied forward ONNX model). */
export function forwardModelFor(task: TaskDocument, forwardModel?: Uint8Array): ForwardModel {
  checkNamedInputs(task);
  const bytes = verifyForwardModel(task, forwardModel);
  if (task.model.kind === 'onnx') return importForwardModel(bytes as Uint8Array, task);
  return buildZooModel(task.model, task.training.seed);
}

export function prepareTask(task: TaskDocument, forwardModel?: Uint8Array): { task: TaskDocument; prepared: PreparedModel } {
  const parsed = parseTaskDocument(task);
  return { task: parsed, prepared: prepareModel(forwardModelFor(parsed, forwardModel), lossOf(parsed)) };
}

export interface PlanOptions {
  /**
   * Secret seed material of the site that will train (e.g. 32 bytes from node:crypto): seeds the random
   * ops of trainStep and trainBlock (Dropout masks), so a coordinator can neither predict nor repeat them.
   */
  readonly randomSeed?: Uint8Array;
}

export function buildTrainingPlan(task: TaskDocument, forwardModel?: Uint8Array, options: PlanOptions = {}): TrainingPlan {
  const { task: parsed, prepared } = prepareTask(task, forwardModel);
  return {
    parameters: parameterInfo(prepared),
    optimizerState: stateInfo(prepared, parsed),
    trainStep: encodeModel(modelFromGraph(buildTrainStepGraph(prepared, parsed, options.randomSeed))),
    trainBlock: encodeModel(modelFromGraph(buildTrainBlockGraph(prepared, parsed, options.randomSeed))),
    evalStep: encodeModel(modelFromGraph(buildEvalStepGraph(prepared))),
    initialParameters: prepared.forward.initialParameters.slice(),
    ...idRangesOf(prepared.forward),
    ...dpSgdOf(prepared, parsed, options.randomSeed),
  };
}

function dpSgdOf(prepared: PreparedModel, task: TaskDocument, randomSeed: Uint8Array | undefined): { dpSgd?: DpSgdPlan } {
  const spec = task.privacy?.recordLevel;
  if (spec === undefined) return {};
  const gradientSum = buildDpGradientGraph(prepared, { clipNorm: spec.clipNorm, ...(randomSeed === undefined ? {} : { randomSeed }) });
  return {
    dpSgd: {
      gradientSum: encodeModel(modelFromGraph(gradientSum)),
      update: encodeModel(modelFromGraph(buildDpUpdateGraph(prepared, task))),
      ...spec,
      dimension: prepared.trainable.reduce((n, p) => n + p.shape.reduce((m, d) => m * d, 1), 0),
    },
  };
}

function idRangesOf(forward: ForwardModel): { idRanges?: Record<string, number> } {
  const ranged = (forward.namedInputs ?? []).filter((input) => input.idRange !== undefined);
  return ranged.length === 0 ? {} : { idRanges: Object.fromEntries(ranged.map((input) => [input.name, input.idRange as number])) };
}
