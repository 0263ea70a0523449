/**
 * Pinning a task (DESIGN.md "What a site checks for itself"): the task document names the model round 1
 * starts from (the SHA-256 of the canonical encoding of its initial weights) and the server optimiser,
 * so the task hash a site pins fixes where the chain of models begins and how it moves. Every site
 * verifies the chain of quorum-signed commit records back to that initial model; without the pin a
 * coordinator could open round 1 on weights it chose alone.
 *
 * `pinTask` fills both keys of a draft document (`fedgate task hash` and the coordinator call it); a
 * document that already carries them is checked against the weights the task builds, so a pinned hash
 * that does not describe this task's initial model is refused, never silently replaced.
 */
import { ModelError } from './errors.js';
import { prepareTask } from './plan.js';
import { sha256Hex } from './digest.js';
import { encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerSpec } from './server-optimizer.js';
import { requirePinnedTask, type PinnedTaskDocument, type TaskDocument } from './task.js';
import { parameterInfo } from './train/graphs.js';
import { modelHash } from './weight-codec.js';
import { warmStartWeights } from './initial-weights.js';
import type { ParameterLayout } from './weights.js';

/** The server optimiser of a document that names none: plain FedAvg (McMahan et al. 2017). */
export const DEFAULT_TASK_SERVER_OPTIMIZER: ServerOptimizerSpec = Object.freeze({ kind: 'fedavg', learningRate: 1 });

/** Hex SHA-256 of the initial weights `task` builds (zoo models from training.seed, ONNX models from the file). */
export function initialModelHash(task: TaskDocument, forwardModel?: Uint8Array): string {
  const { prepared } = prepareTask(task, forwardModel);
  return modelHash({ parameters: parameterInfo(prepared) }, prepared.forward.initialParameters);
}

/**
 * `task` with its initial model hash and server optimiser filled in where absent, validated. Throws
 * ModelError 'INITIAL_MODEL_MISMATCH' when the document pins another initial model than the one it builds.
 */
export function pinTask(task: TaskDocument, forwardModel?: Uint8Array): PinnedTaskDocument {
  const serverOptimizer = task.serverOptimizer ?? DEFAULT_TASK_SERVER_OPTIMIZER;
  // A warm start names weights the task does not build (initial-weights.ts checks them against the file).
  if (task.initialModel?.warmStart === true) {
    prepareTask(task, forwardModel);
    return { ...task, initialModel: { sha256: task.initialModel.sha256, warmStart: true }, serverOptimizer };
  }
  const built = initialModelHash(task, forwardModel);
  if (task.initialModel !== undefined && task.initialModel.sha256 !== built) {
    throw initialModelMismatch(task.initialModel.sha256, built);
  }
  return { ...task, initialModel: { sha256: built }, serverOptimizer };
}

/**
 * `task` pinned to start from `weights` (a warm start): initialModel { sha256: the weights' model hash,
 * warmStart: true }, the server optimiser filled in as pinTask does.
 */
export function pinWarmStart(task: TaskDocument, weightsHash: string, forwardModel?: Uint8Array): PinnedTaskDocument {
  return pinTask({ ...task, initialModel: { sha256: weightsHash, warmStart: true } }, forwardModel);
}

/**
 * Checks that `initialParameters` (laid out as `layout`, from the plan built from `task`) are the initial
 * model the task pins; returns the pinned task. A site calls it on every task it prepares, the
 * coordinator before its first round.
 */
export function checkPinnedInitialModel(task: TaskDocument, layout: ParameterLayout, initialParameters: Float32Array): PinnedTaskDocument {
  const pinned = requirePinnedTask(task);
  const built = modelHash(layout, initialParameters);
  if (built !== pinned.initialModel.sha256) throw initialModelMismatch(pinned.initialModel.sha256, built);
  return pinned;
}

/**
 * The weights `initialModelFile` holds, in the task's layout, checked against what the task pins: for a
 * warm start they must hash to initialModel.sha256; a task that builds its own initial weights takes no file.
 */
export function startingWeights(task: PinnedTaskDocument, layout: ParameterLayout, built: Float32Array, initialModelFile: Uint8Array | undefined): Float32Array {
  const pinned = task.initialModel.sha256;
  if (task.initialModel.warmStart !== true) {
    if (initialModelFile !== undefined) {
      throw new ModelError(
        'FAILED_PRECONDITION',
        'INITIAL_MODEL_NOT_PINNED',
        'an initial model file was given, but the task builds its own initial weights (its initialModel has no warmStart): pin the file with `fedgate task hash TASK --initial-model FILE`, re-pin the new task hash at the sites, or drop initial_model',
      );
    }
    return built;
  }
  if (initialModelFile === undefined) {
    throw new ModelError(
      'FAILED_PRECONDITION',
      'INITIAL_MODEL_MISSING',
      `the task starts from model ${pinned} (initialModel.warmStart): set initial_model to that model's file (an ONNX model exported by fedgate, or models/${pinned}.bin of a coordinator's state directory)`,
    );
  }
  const weights = warmStartWeights(initialModelFile, layout);
  const actual = modelHash(layout, weights);
  if (actual !== pinned) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'INITIAL_MODEL_MISMATCH',
      `the initial model file holds weights whose model hash is ${actual}, but the task pins initialModel.sha256 ${pinned}: give the file of the model the task names, or pin this file with \`fedgate task hash TASK --initial-model FILE\` and re-pin the new task hash at the sites`,
    );
  }
  return weights;
}

function initialModelMismatch(pinned: string, built: string): ModelError {
  return new ModelError(
    'INVALID_ARGUMENT',
    'INITIAL_MODEL_MISMATCH',
    `the task pins initial model ${pinned} (initialModel.sha256) but its initial weights hash to ${built}: remove initialModel and run \`fedgate task hash\` again, or fix the model section`,
  );
}

/** Whether two server optimisers are the same kind with the same hyper-parameters (bit for bit). */
export function sameServerOptimizer(a: ServerOptimizerSpec, b: ServerOptimizerSpec): boolean {
  if (a.kind !== b.kind || !Object.is(a.learningRate, b.learningRate)) return false;
  return a.kind === 'fedavg' || (b.kind === 'fedavgm' && Object.is(a.momentum, b.momentum));
}

/** Where the chain of a pinned task starts: its initial model hash and the hash of the initial optimiser state. */
export interface ChainStart {
  /** Hex SHA-256 of the initial weights (= task.initialModel.sha256). */
  readonly modelHash: string;
  /** Hex SHA-256 of the canonical initial server-optimiser state (FedAvgM: zero velocity). */
  readonly optimizerStateHash: string;
}

/** The chain start of `task` for a model of `parameterCount` parameters (what the coordinator stores before round 1). */
export function chainStart(task: PinnedTaskDocument, parameterCount: number): ChainStart {
  const spec = task.serverOptimizer;
  return { modelHash: task.initialModel.sha256, optimizerStateHash: sha256Hex(encodeServerOptimizerState(spec, initialServerOptimizerState(spec, parameterCount))) };
}

/** Parameters of the model `task` builds (for chainStart when no plan is at hand). */
export function taskParameterCount(task: TaskDocument, forwardModel?: Uint8Array): number {
  return prepareTask(task, forwardModel).prepared.forward.initialParameters.length;
}

/**
 * The chain start of a pinned task, from the task alone (no full training plan): checks that the weights
 * the task builds are the pinned initial model. What a site needs before its first key of round 1.
 */
export function pinnedChainStart(task: TaskDocument, forwardModel?: Uint8Array): ChainStart {
  const pinned = requirePinnedTask(task);
  const { prepared } = prepareTask(pinned, forwardModel);
  const initial = prepared.forward.initialParameters;
  // A warm start's weights are checked against the pin where the site loads them (it trains on nothing else).
  if (pinned.initialModel.warmStart !== true) checkPinnedInitialModel(pinned, { parameters: parameterInfo(prepared) }, initial);
  return chainStart(pinned, initial.length);
}
