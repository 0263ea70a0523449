/**
 * Trainer: local training on ONNX Runtime in a worker thread (DESIGN.md "Local training with ONNX
 * Runtime"). The main thread validates arguments, queues calls, shares datasets once and turns every
 * worker failure - an error in a call, a crash, an unexpected exit - into a rejected promise carrying the
 * worker's message. Nothing here blocks the event loop for longer than a message copy.
 */
import { type TransferListItem, Worker } from 'node:worker_threads';
import type { Dataset } from '../data/dataset.js';
import { DatasetSharing } from './dataset-sharing.js';
import { parseDevice } from './device.js';
import { checkIdRanges } from './id-ranges.js';
import { TrainerError, fromWire, invalidArgument } from './errors.js';
import { type PlanLayout, checkPlanBytes, planLayout } from './plan.js';
import {
  type EvaluateOptions,
  MAX_BATCH_SIZE,
  type TrainOptions,
  type TrainerLogger,
  type TrainerOptions,
  checkInteger,
  compileTrainRequest,
  compileTrainerOptions,
} from './options.js';
import type { EvaluateOutcome, FromWorker, ProgressEvent, ReadyInfo, ToWorker, TrainOutcome } from './protocol.js';
import { trainerWorkerSpec } from './worker-launch.js';

export type TrainResult = TrainOutcome;
export type EvaluationResult = EvaluateOutcome;
export type { EvaluateOptions, ProgressEvent, TrainOptions, TrainerLogger, TrainerOptions };

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly onProgress: ((event: ProgressEvent) => void) | undefined;
}

const noLogger: TrainerLogger = { info: () => {}, warn: () => {} };

export class Trainer {
  private readonly pending = new Map<number, Pending>();
  private readonly sharing: DatasetSharing;
  private nextCallId = 1;
  private tail: Promise<unknown> = Promise.resolve();
  private failure: TrainerError | undefined;
  private closing: Promise<void> | undefined;
  private readyInfo: ReadyInfo | undefined;
  private idRanges: Readonly<Record<string, number>> | undefined;
  private readonly exited: Promise<number>;

  private constructor(
    private readonly worker: Worker,
    private readonly layout: PlanLayout,
  ) {
    this.sharing = new DatasetSharing((datasetId) => {
      if (this.failure === undefined && this.closing === undefined) this.post({ type: 'release', datasetId });
    });
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (error) => this.fail(new TrainerError('INTERNAL', 'WORKER_CRASHED', `training worker crashed: ${error.message}`, { cause: error })));
    worker.on('messageerror', (error) => this.fail(new TrainerError('INTERNAL', 'WORKER_MESSAGE_ERROR', `training worker sent an unreadable message: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => {
      if (this.closing === undefined) this.fail(new TrainerError('INTERNAL', 'WORKER_EXITED', `training worker exited unexpectedly with code ${code}`));
    });
  }

  /** Starts the worker, loads the plan's graphs on the chosen device and logs which device it got. */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const device = parseDevice(options.device);
    const { intraOpThreads: threads, stepsPerRun } = compileTrainerOptions(options);
    const layout = planLayout(options.plan);
    checkPlanBytes(options.plan);
    const spec = trainerWorkerSpec();
    const worker = new Worker(spec.script, {
      eval: spec.eval,
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
    });
    const trainer = new Trainer(worker, layout);
    const { plan } = options;
    trainer.idRanges = plan.idRanges;
    try {
      const info = (await trainer.call(
        0,
        {
          type: 'init',
          parameters: plan.parameters.map((t) => ({ name: t.name, shape: [...t.shape] })),
          optimizerState: plan.optimizerState.map((t) => ({ name: t.name, shape: [...t.shape] })),
          trainStep: plan.trainStep,
          trainBlock: plan.trainBlock,
          evalStep: plan.evalStep,
          device,
          intraOpThreads: threads,
          stepsPerRun,
          tuning: options.sessionTuning ?? {},
          ...(plan.dpSgd === undefined ? {} : { dpSgd: { ...plan.dpSgd } }),
        },
        [],
        undefined,
      )) as ReadyInfo;
      trainer.readyInfo = info;
      const logger = options.logger ?? noLogger;
      const fields = { device: options.device, provider: info.provider, intraOpThreads: threads, stepsPerRun: info.stepsPerRun };
      if (info.fallbackReason !== undefined) logger.info({ ...fields, reason: info.fallbackReason }, `training on CPU: ${info.fallbackReason}`);
      else logger.info(fields, info.provider === 'cuda' ? `training on CUDA device ${info.deviceId ?? 0}` : 'training on CPU');
      return trainer;
    } catch (error) {
      await trainer.shutdown();
      throw error;
    }
  }

  /** Execution provider in use, the example shape the graphs take, and steps per run. */
  get info(): ReadyInfo {
    return this.readyInfo as ReadyInfo;
  }

  /** Number of values in the flat parameter vector the plan defines. */
  get parameterSize(): number {
    return this.layout.parameterSize;
  }

  /**
   * Trains `parameters` on `data` locally; resolves with the updated parameters and training metrics.
   * `data` is copied to shared memory the first time any Trainer sees it and that copy is reused, so
   * treat a Dataset as immutable once it has been trained on (normalize() and subset() make new ones).
   */
  train(parameters: Float32Array, data: Dataset, options: TrainOptions): Promise<TrainResult> {
    return this.enqueue(() => {
      const request = compileTrainRequest(options);
      this.checkParameters(parameters, 'parameters');
      if (options.globalParameters !== undefined) this.checkParameters(options.globalParameters, 'globalParameters');
      if (options.signal?.aborted === true) {
        throw new TrainerError('CANCELLED', 'TRAINING_ABORTED', 'training aborted by the caller before it started');
      }
      checkIdRanges(data, this.idRanges, 'data');
      const abortFlag = new Int32Array(new SharedArrayBuffer(4));
      const onAbort = (): void => {
        Atomics.store(abortFlag, 0, 1);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const message: ToWorker = {
        type: 'train',
        callId: this.nextCallId++,
        dataset: this.sharing.refer(data, 'data'),
        parameters: parameters.slice(),
        globalParameters: options.globalParameters?.slice(),
        request,
        abortFlag,
      };
      // slice() above made fresh ArrayBuffers: hand them over instead of copying them a second time.
      const transfer = [message.parameters, ...(message.globalParameters === undefined ? [] : [message.globalParameters])].map((a) => a.buffer as ArrayBuffer);
      return this.call(message.callId, message, transfer, options.onProgress).finally(() => options.signal?.removeEventListener('abort', onAbort)) as Promise<TrainResult>;
    });
  }

  /**
   * Loss sum and correct count of `parameters` on `data` (inference mode: BatchNorm running statistics,
   * no dropout). `options` may be the batch size itself.
   */
  evaluate(parameters: Float32Array, data: Dataset, options: EvaluateOptions | number = {}): Promise<EvaluationResult> {
    return this.enqueue(() => {
      const requested = typeof options === 'number' ? options : options.batchSize;
      const batchSize = checkInteger('batchSize', requested ?? 256, 1, MAX_BATCH_SIZE);
      this.checkParameters(parameters, 'parameters');
      checkIdRanges(data, this.idRanges, 'data');
      const message: ToWorker = { type: 'evaluate', callId: this.nextCallId++, dataset: this.sharing.refer(data, 'data'), parameters: parameters.slice(), batchSize };
      return this.call(message.callId, message, [message.parameters.buffer as ArrayBuffer], undefined) as Promise<EvaluationResult>;
    });
  }

  /** Releases the sessions and stops the worker; calls still queued reject with CANCELLED. */
  close(): Promise<void> {
    return this.shutdown();
  }

  private shutdown(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const closed = new TrainerError('CANCELLED', 'TRAINER_CLOSED', 'the trainer was closed before this call completed');
    for (const pending of this.pending.values()) pending.reject(closed);
    this.pending.clear();
    this.failure ??= closed;
    this.closing = (async () => {
      this.post({ type: 'close' });
      await this.exited;
    })();
    return this.closing;
  }

  private enqueue<T>(start: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
      return start();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private call(callId: number, message: ToWorker, transfer: TransferListItem[], onProgress: ((event: ProgressEvent) => void) | undefined): Promise<unknown> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(callId, { resolve, reject, onProgress });
      this.worker.postMessage(message, transfer);
    });
  }

  private post(message: ToWorker): void {
    try {
      this.worker.postMessage(message);
    } catch {
      // The worker is already gone; its exit has been (or will be) reported through fail().
    }
  }

  private settle(callId: number): Pending | undefined {
    const pending = this.pending.get(callId);
    this.pending.delete(callId);
    return pending;
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        this.settle(0)?.resolve(message.info);
        return;
      case 'init-failed':
        this.settle(0)?.reject(fromWire(message.error));
        return;
      case 'progress': {
        const onProgress = this.pending.get(message.callId)?.onProgress;
        if (onProgress !== undefined) {
          try {
            onProgress(message.event);
          } catch {
            // A throwing progress callback must not break training; it is the caller's bug to fix.
          }
        }
        return;
      }
      case 'trained':
      case 'evaluated':
        this.settle(message.callId)?.resolve(message.outcome);
        return;
      case 'failed':
        this.settle(message.callId)?.reject(fromWire(message.error));
        return;
      case 'closed':
        return;
    }
  }

  /** The worker is unusable: reject everything in flight and every later call with `error`. */
  private fail(error: TrainerError): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  private checkParameters(values: Float32Array, name: string): void {
    if (!(values instanceof Float32Array) || values.length !== this.layout.parameterSize) {
      const got = values instanceof Float32Array ? `${values.length} values` : typeof values;
      throw invalidArgument('PARAMETERS_LENGTH', `${name} must be a Float32Array of ${this.layout.parameterSize} values (the plan's parameters), got ${got}`);
    }
    // The scan for NaN/Infinity runs in the worker: a million values are not worth an event-loop stall.
  }
}
