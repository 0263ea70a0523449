/**
 * model/: ONNX training graphs for fedgate. Pure and I/O-free: builds and reads ONNX bytes; running
 * them is participant/'s job (onnxruntime-node).
 */
export { ModelError, type ModelErrorCode, type ModelErrorReason } from './errors.js';
export {
  parseTaskDocument,
  canonicalTaskBytes,
  taskHash,
  verifyForwardModel,
  type TaskDocument,
  type ModelSpec,
  type OptimizerSpec,
} from './task.js';
export { buildTrainingPlan, type TrainingPlan } from './plan.js';
export type { TensorInfo } from './train/optimizer.js';
export { exportInferenceModel, type ExportOptions } from './export.js';
export { flattenParameters, unflattenParameters, modelHash, parameterCount, type ParameterLayout } from './weights.js';
export { buildGradientModel } from './gradient-model.js';
export { DIFFERENTIABLE_OPS, SHAPE_PLUMBING_OPS } from './autodiff/registry.js';
export { DEFAULT_OPSET } from './graph/model.js';
export { MIN_IMPORT_OPSET, MAX_IMPORT_OPSET } from './import.js';
