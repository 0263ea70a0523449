/**
 * The one error type of model/. model/ imports nothing of ours, so this is not a FedgateError, but it has
 * the same shape: `code` is the gRPC status name the service edge maps to a status (INVALID_ARGUMENT,
 * FAILED_PRECONDITION, ..., a subset of FedgateCode); `reason` is the specific machine-readable cause in
 * UPPER_SNAKE_CASE. proto/status.ts checks at compile time that both types fit fedgate's.
 */
export type ModelErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNIMPLEMENTED'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL';

export type ModelErrorReason =
  | 'TASK_INVALID'
  // task.ts / task-pin.ts: a draft task, or one whose pinned initial model its weights do not match.
  | 'TASK_NOT_PINNED'
  | 'INITIAL_MODEL_MISMATCH'
  // initial-weights.ts / task-pin.ts startingWeights: a warm start's initial model file.
  | 'INITIAL_MODEL_MISSING'
  | 'INITIAL_MODEL_NOT_PINNED'
  | 'INITIAL_MODEL_UNREADABLE'
  | 'MALFORMED_ONNX'
  // onnx/external-data.ts: a tensor kept in a side file (without a resolver), or whose entries or data are wrong.
  | 'EXTERNAL_DATA'
  | 'EXTERNAL_DATA_INVALID'
  // onnx/embed.ts: one ONNX file cannot exceed protobuf's 2 GiB message limit.
  | 'MODEL_TOO_LARGE'
  | 'UNSUPPORTED_MODEL'
  | 'UNSUPPORTED_OPS'
  | 'SHAPE_MISMATCH'
  | 'FORWARD_MODEL_MISSING'
  | 'FORWARD_MODEL_HASH_MISMATCH'
  | 'PARAMETERS_MISMATCH'
  | 'GRAPH_INVALID'
  // server-optimizer.ts: the aggregate, the weights or the stored optimiser state do not fit the model.
  | 'LENGTH_MISMATCH'
  | 'NO_WEIGHT'
  | 'STATE_MISMATCH'
  | 'TRUNCATED'
  | 'MALFORMED'
  | 'UNSUPPORTED_VERSION';

export class ModelError extends Error {
  override name = 'ModelError';
  readonly code: ModelErrorCode;
  readonly reason: ModelErrorReason;

  constructor(code: ModelErrorCode, reason: ModelErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.reason = reason;
  }
}

/** Short printable form of a bad value for error messages (never dumps a whole tensor). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return value.length > 8 ? `array of length ${value.length}` : JSON.stringify(value);
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return typeof value;
}
