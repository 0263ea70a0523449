// Public API of participant/trainer: local training on ONNX Runtime in a worker thread.
export { TrainerError, type TrainerErrorCode } from './errors.js';
export { type Device, parseDevice } from './device.js';
export type { PlanTensor, TrainerPlan } from './plan.js';
export type { EvaluateOutcome, ProgressEvent, ReadyInfo, SessionTuning, TrainOutcome } from './protocol.js';
export { type EvaluateOptions, type EvaluationResult, type TrainOptions, type TrainResult, Trainer, type TrainerLogger, type TrainerOptions } from './trainer.js';
