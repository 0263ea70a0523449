/**
 * model/: ONNX training graphs for fedgate. Pure and I/O-free: builds and reads ONNX bytes; running
 * them is participant/'s job (onnxruntime-node).
 *
 * - task.ts: the task document (validation, canonical bytes, task hash); task-pin.ts: the initial model
 *   hash and server optimiser a pinned task names;
 * - plan.ts: buildTrainingPlan -> trainStep / trainBlock / evalStep graphs, parameter layout, initial
 *   weights (zoo/ for logreg, mlp and the FedAvg CNN; import.ts for a user's forward ONNX model);
 * - autodiff/: reverse-mode differentiation of Gemm, MatMul, Add, Sub, Mul, Div, Relu, Sigmoid, Tanh,
 *   Softmax, LogSoftmax, Conv, MaxPool, AveragePool, Flatten, Reshape, Transpose, Squeeze, Unsqueeze,
 *   Concat, Cast, BatchNormalization (training mode), Dropout, Identity, the activations of
 *   ops/activation.ts, the math of ops/math.ts, ReduceSum/Mean/Max, Layer- and InstanceNormalization,
 *   Slice, Split, Expand, Tile, Gather, GatherElements and Where (DIFFERENTIABLE_OPS lists them); Shape,
 *   Size, Constant, ConstantOfShape and the comparisons (masks) carry no gradient;
 * - export.ts: the plain inference model; weights.ts: flat weights; weight-codec.ts: their canonical
 *   bytes and the model hash; server-optimizer.ts and next-model.ts: model r+1 from model r and the
 *   aggregate, the one computation coordinator, sites and `fedgate verify` share;
 * - onnx/: the hand-declared ONNX protobuf subset and its codec; graph/: the graph builder.
 */
export { ModelError, type ModelErrorCode, type ModelErrorReason } from './errors.js';
export {
  parseTaskDocument,
  canonicalTaskBytes,
  taskHash,
  verifyForwardModel,
  isPinnedTask,
  requirePinnedTask,
  lossOf,
  targetKindOf,
  namedInputsOf,
  checkNamedInputs,
  type LossSpec,
  type LossKind,
  type ResolvedLoss,
  type TargetKind,
  type InputSpec,
  type TargetSpec,
  type PinnedTaskDocument,
  type TaskDocument,
  type ModelSpec,
  type OptimizerSpec,
} from './task.js';
export { buildTrainingPlan, type DpSgdPlan, type TrainingPlan } from './plan.js';
export { BATCHNORM_REFUSAL } from './train/per-example.js';
export { checkPerExampleMemory, MAX_PER_EXAMPLE_BYTES, perExampleBytes } from './train/dp-graphs.js';
export {
  pinTask,
  pinWarmStart,
  startingWeights,
  initialModelHash,
  checkPinnedInitialModel,
  sameServerOptimizer,
  chainStart,
  pinnedChainStart,
  taskParameterCount,
  DEFAULT_TASK_SERVER_OPTIMIZER,
  type ChainStart,
} from './task-pin.js';
export type { TensorInfo } from './train/optimizer.js';
export { exportInferenceModel, type ExportOptions } from './export.js';
export { flattenParameters, unflattenParameters, parameterCount, type ParameterLayout } from './weights.js';
export { warmStartWeights } from './initial-weights.js';
export { decodeWeights, encodeWeights, modelHash, weightsLayout } from './weight-codec.js';
export { buildGradientModel } from './gradient-model.js';
export { DIFFERENTIABLE_OPS, SHAPE_PLUMBING_OPS } from './autodiff/registry.js';
export { DEFAULT_OPSET } from './graph/model.js';
export { MIN_IMPORT_OPSET, MAX_IMPORT_OPSET, forwardModelWarnings } from './import.js';
