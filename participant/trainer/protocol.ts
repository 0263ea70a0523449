/**
 * Messages between the Trainer (main thread) and its worker. Everything here survives structured clone.
 * Datasets travel once, as SharedArrayBuffers, and are then referred to by id; parameters travel per
 * call (one copy of a few MB is noise next to an epoch of training).
 */
import type { WireError } from './errors.js';
import type { PlanTensor } from './plan.js';
import type { ParsedDevice } from './device.js';
import type { DpSgdAccounting, DpSgdSpec } from './dp-sgd.js';

/** ONNX Runtime session tuning, passed through to InferenceSession.create. */
export interface SessionTuning {
  /** @default 'extended' (ort-sessions.ts says why not 'all') */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  /** @default 'sequential' */
  readonly executionMode?: 'sequential' | 'parallel';
  /** @default true */
  readonly enableCpuMemArena?: boolean;
  /** @default true */
  readonly enableMemPattern?: boolean;
}

export interface InitMessage {
  readonly type: 'init';
  readonly parameters: readonly PlanTensor[];
  readonly optimizerState: readonly PlanTensor[];
  readonly trainStep: Uint8Array;
  readonly trainBlock: Uint8Array | undefined;
  readonly evalStep: Uint8Array;
  readonly device: ParsedDevice;
  readonly intraOpThreads: number;
  /** Steps per session.run when the plan has a trainBlock: a number, or 0 for the single-step graph. */
  readonly stepsPerRun: number;
  readonly tuning: SessionTuning;
  /** The plan's DP-SGD graphs and parameters (TrainerPlan.dpSgd); train() then runs DP-SGD only. */
  readonly dpSgd?: DpSgdGraphs;
}

export interface DpSgdGraphs extends DpSgdSpec {
  readonly gradientSum: Uint8Array;
  readonly update: Uint8Array;
}

/** A dataset as shared with the worker. */
export interface SharedDataset {
  readonly id: number;
  readonly features: Float32Array;
  readonly labels: Int32Array;
  readonly count: number;
  readonly featureSize: number;
  /** Float targets (multi-label, regression), targetSize per example; absent for class labels. */
  readonly targets?: Float32Array;
  readonly targetSize?: number;
  /** Named inputs (Dataset.inputs), size values per example each; absent for the one float32 input. */
  readonly inputs?: readonly SharedInput[];
}

export interface SharedInput {
  readonly name: string;
  readonly dtype: 'float32' | 'int64';
  readonly size: number;
  readonly values: Float32Array | BigInt64Array;
}

export interface TrainRequest {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly proximalMu: number;
  /** Minimum milliseconds between step progress events (epoch ends are always reported). */
  readonly progressIntervalMs: number;
  readonly reportProgress: boolean;
}

export interface TrainMessage {
  readonly type: 'train';
  readonly callId: number;
  /** The dataset itself the first time it is used, its id afterwards. */
  readonly dataset: SharedDataset | number;
  readonly parameters: Float32Array;
  readonly globalParameters: Float32Array | undefined;
  readonly request: TrainRequest;
  /** Int32Array over a SharedArrayBuffer; the main thread stores 1 to stop training after the current run. */
  readonly abortFlag: Int32Array;
}

export interface EvaluateMessage {
  readonly type: 'evaluate';
  readonly callId: number;
  readonly dataset: SharedDataset | number;
  readonly parameters: Float32Array;
  readonly batchSize: number;
}

export interface ReleaseMessage {
  readonly type: 'release';
  readonly datasetId: number;
}

export interface CloseMessage {
  readonly type: 'close';
}

export type ToWorker = InitMessage | TrainMessage | EvaluateMessage | ReleaseMessage | CloseMessage;

export interface ProgressEvent {
  /** 'step' at most every progressIntervalMs, 'epoch' at the end of every epoch. */
  readonly kind: 'step' | 'epoch';
  /** 1-based epoch being trained. */
  readonly epoch: number;
  readonly epochs: number;
  /** Optimisation steps done so far (over all epochs). */
  readonly step: number;
  readonly totalSteps: number;
  /** Mean training loss over the examples since the previous event (for 'epoch': over the epoch). */
  readonly loss: number;
  /** Training accuracy over the same examples. */
  readonly accuracy: number;
  /** Examples processed so far, over all epochs. */
  readonly examplesSeen: number;
}

export interface TrainOutcome {
  readonly parameters: Float32Array;
  /** Number of training examples (the FedAvg weight n_k), not multiplied by epochs. */
  readonly examples: number;
  /** Mean training loss over every example of every epoch. */
  readonly meanLoss: number;
  /** Fraction of correct predictions over every example of every epoch, measured while training. */
  readonly trainAccuracy: number;
  readonly steps: number;
  /** session.run calls (fewer than steps when trainBlock runs several steps per call). */
  readonly runs: number;
  /**
   * Set when the plan trains with DP-SGD: what the site's accountant charges for this call (dp-sgd.ts).
   * meanLoss and trainAccuracy are then over the Poisson-sampled examples and are NOT differentially
   * private: they stay on the site.
   */
  readonly dpSgd?: DpSgdAccounting;
}

export interface EvaluateOutcome {
  /** Sum of the per-example losses. */
  readonly lossSum: number;
  readonly correct: number;
  readonly examples: number;
  /**
   * The evalStep's further sums, by output name: true_positives / false_positives / false_negatives
   * (multi-label), squared_error_sum / absolute_error_sum / target_sum / target_square_sum (regression).
   * Absent for class-index tasks.
   */
  readonly sums?: Readonly<Record<string, number>>;
}

export interface ReadyInfo {
  readonly provider: 'cpu' | 'cuda';
  readonly deviceId?: number;
  /** Why `auto` ended on the CPU, when it did. */
  readonly fallbackReason?: string;
  /** Shape of one example as the train graph declares it (the 'input' dims after the batch dim); [] for named inputs. */
  readonly inputShape: readonly number[];
  /** The train graph's named inputs ('input.<name>'), when it has them instead of 'input'. */
  readonly namedInputs?: readonly { readonly name: string; readonly dtype: 'float32' | 'int64'; readonly shape: readonly number[] }[];
  /**
   * Steps per session.run for full blocks of batches: 1 = single-step graph only (also when the plan
   * has no trainBlock). Fewer when a block of that many batches would exceed the block buffer limit.
   */
  readonly stepsPerRun: number;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly info: ReadyInfo }
  | { readonly type: 'init-failed'; readonly error: WireError }
  | { readonly type: 'progress'; readonly callId: number; readonly event: ProgressEvent }
  | { readonly type: 'trained'; readonly callId: number; readonly outcome: TrainOutcome }
  | { readonly type: 'evaluated'; readonly callId: number; readonly outcome: EvaluateOutcome }
  | { readonly type: 'failed'; readonly callId: number; readonly error: WireError }
  | { readonly type: 'closed' };
