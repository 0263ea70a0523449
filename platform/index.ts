/**
 * platform/: process and file-system facilities with side effects that every role folder (proto/,
 * coordinator/, participant/, certs/, cli/) may import - crash-safe file writes, helpers that touch the
 * runtime itself (V8 flags, the process's memory) - and fedgate's one error type. It imports nothing of
 * ours; crypto/ and model/ stay pure and are handed what they need (crypto/buffer-release.ts's
 * installBufferTransfer).
 */
export {
  FEDGATE_CODES,
  FedgateError,
  REASON_PATTERN,
  fedgateError,
  isFedgateCode,
  isFedgateReason,
  type ErrorDetails,
  type FedgateCode,
  type FedgateErrorOptions,
  type FedgateReason,
} from './errors.js';
export { completeLeftoverWrite, leftoverWrites, prepareDirectory, readFileIfExists, syncDirectory, writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
export { PRIVATE_DIRECTORY_MODE, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, ensureDirectory, exists, isErrnoException } from './file-system.js';
export { flaggedBuiltin } from './flagged-builtin.js';
export { arrayBufferTransfer, type ArrayBufferTransfer } from './array-buffer-transfer.js';
export { METRICS_PATH, startMetricsEndpoint, type MetricsEndpoint, type MetricsListenOptions, type MetricsSource, type MetricsTls } from './metrics-endpoint.js';
export { OTHER_LABEL, ReasonLabels } from './metric-labels.js';
