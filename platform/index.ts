/**
 * platform/: process and file-system facilities with side effects that every role folder (proto/,
 * coordinator/, participant/, certs/, cli/) may import, and fedgate's one error type. It imports nothing
 * of ours; crypto/ and model/ stay pure and do not import it.
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
export { prepareDirectory, readFileIfExists, syncDirectory, writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
export { PRIVATE_DIRECTORY_MODE, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, ensureDirectory, exists, isErrnoException } from './file-system.js';
