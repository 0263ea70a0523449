/**
 * fedgate's one error type, as the wire layer and the code built on it (coordinator, participant) import
 * it. FedgateError lives in platform/errors.ts so that certs/, which may not import proto/, extends it
 * too; status.ts is the one place that maps it (and crypto/'s and model/'s own errors) to a gRPC status.
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
} from '../platform/errors.js';
