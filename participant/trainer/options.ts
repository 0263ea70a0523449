/**
 * The Trainer's options: what callers pass, their documented defaults, and their validation, done once
 * at the boundary (options -> defaults -> validate -> the compiled form the worker receives). Every
 * message names the option, the bad value and the accepted range.
 */
import type { ResourceLimits } from 'node:worker_threads';
import type { Device } from './device.js';
import { invalidArgument } from './errors.js';
import type { TrainerPlan } from './plan.js';
import type { ProgressEvent, SessionTuning, TrainRequest } from './protocol.js';

/** The subset of a pino logger the trainer writes to. */
export interface TrainerLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface TrainerOptions {
  /** The training plan (model/ buildTrainingPlan's TrainingPlan fits). */
  readonly plan: TrainerPlan;
  /** 'auto' tries CUDA then CPU; 'cuda' / 'cuda:N' fail when the CUDA provider is missing. */
  readonly device: Device;
  /** ONNX Runtime intra-op threads. @default 1 */
  readonly intraOpThreads?: number;
  /**
   * Optimisation steps per session.run when the plan has a trainBlock graph; 1 uses the single-step
   * graph only; 'auto' is 16 (training-engine.ts says why).
   * @default 'auto'
   */
  readonly stepsPerRun?: 'auto' | number;
  readonly logger?: TrainerLogger;
  /** ONNX Runtime session options, for tuning experiments; the defaults suit training. */
  readonly sessionTuning?: SessionTuning;
  /** Heap limits of the worker thread. */
  readonly resourceLimits?: ResourceLimits;
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Seeds the per-epoch shuffles; the same seed, data and parameters give the same result. */
  readonly seed: number;
  /** FedProx proximal term weight (0 = plain FedAvg local training). @default 0 */
  readonly proximalMu?: number;
  /** FedProx anchor w^t. @default the starting `parameters` (the global model of the round) */
  readonly globalParameters?: Float32Array;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Minimum time between step progress events; every epoch end is reported. @default 250 */
  readonly progressIntervalMs?: number;
  /** Aborting stops training after the session.run in flight; the promise rejects with CANCELLED. */
  readonly signal?: AbortSignal;
}

export interface EvaluateOptions {
  /** @default 256 */
  readonly batchSize?: number;
}

export const MAX_BATCH_SIZE = 1 << 20;

export function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument('INVALID_OPTION', `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkPositive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw invalidArgument('INVALID_OPTION', `${name} must be a finite number > 0, got ${String(value)}`);
  }
  return value;
}

function checkNonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw invalidArgument('INVALID_OPTION', `${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/** Validated creation options with defaults applied (the plan and device are checked elsewhere). */
export function compileTrainerOptions(options: TrainerOptions): { intraOpThreads: number; stepsPerRun: number } {
  const threads = options.intraOpThreads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw invalidArgument('INVALID_THREADS', `intraOpThreads must be an integer in [1, 256], got ${String(threads)}`);
  }
  const stepsPerRun = options.stepsPerRun ?? 'auto';
  if (stepsPerRun !== 'auto' && (!Number.isInteger(stepsPerRun) || stepsPerRun < 1 || stepsPerRun > 4096)) {
    throw invalidArgument('INVALID_STEPS_PER_RUN', `stepsPerRun must be 'auto' or an integer in [1, 4096], got ${String(stepsPerRun)}`);
  }
  // 0 tells the worker "auto".
  return { intraOpThreads: threads, stepsPerRun: stepsPerRun === 'auto' ? 0 : stepsPerRun };
}

/** The request the worker receives for one train() call. */
export function compileTrainRequest(options: TrainOptions): TrainRequest {
  return {
    epochs: checkInteger('epochs', options.epochs, 1, 1_000_000),
    batchSize: checkInteger('batchSize', options.batchSize, 1, MAX_BATCH_SIZE),
    learningRate: checkPositive('learningRate', options.learningRate),
    seed: checkInteger('seed', options.seed, 0, Number.MAX_SAFE_INTEGER),
    proximalMu: checkNonNegative('proximalMu', options.proximalMu ?? 0),
    progressIntervalMs: checkNonNegative('progressIntervalMs', options.progressIntervalMs ?? 250),
    reportProgress: options.onProgress !== undefined,
  };
}
