// Public API of participant/trainer: local training on ONNX Runtime in a worker thread.
export { TrainerError, type TrainerErrorCode } from './errors.js';
export { type Device, parseDevice } from './device.js';
export type { PlanTensor, TrainerPlan } from './plan.js';
export type { EvaluateOutcome, ProgressEvent, ReadyInfo, SessionTuning, TrainOutcome } from './protocol.js';
export { type EvaluationResult, type TrainResult, Trainer } from './trainer.js';
export type { EvaluateOptions, TrainOptions, TrainerLogger, TrainerOptions } from './options.js';
