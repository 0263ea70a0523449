/**
 * The one error type of certs/: a FedgateError (platform/, which certs/ may import) with the PKI's own
 * codes and reasons, so the service edge and the CLI report it like any other fedgate error.
 */
import { FedgateError } from '../platform/index.js';

/** gRPC status names used by the PKI tooling (a subset of grpc.status). */
export type PkiErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'ABORTED'
  | 'INTERNAL';

/** Why the operation failed, stable enough to branch on in callers and tests. */
export type PkiErrorReason =
  | 'INVALID_NAME'
  | 'INVALID_ROLE'
  | 'INVALID_HOST'
  | 'INVALID_VALIDITY'
  | 'INVALID_SERIAL'
  | 'INVALID_CRL_NUMBER'
  | 'INVALID_PEM'
  | 'NOT_A_CA'
  | 'OUTLIVES_CA'
  | 'CA_NOT_INITIALISED'
  | 'CA_ALREADY_INITIALISED'
  | 'KEY_FILE_TOO_OPEN'
  | 'BUNDLE_EXISTS'
  | 'UNKNOWN_SERIAL'
  | 'REVOCATION_LIST_CORRUPT'
  | 'DIRECTORY_LOCKED'
  | 'CRL_MALFORMED'
  | 'CRL_UNSUPPORTED'
  | 'CRL_SIGNATURE_INVALID'
  | 'CRL_ISSUER_MISMATCH'
  | 'CRL_NOT_YET_VALID'
  | 'CRL_EXPIRED';

export interface PkiErrorOptions {
  readonly cause?: unknown;
  /** Structured context for logs (file paths, serials); never secrets. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export class PkiError extends FedgateError {
  declare readonly code: PkiErrorCode;
  declare readonly reason: PkiErrorReason;
  declare readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(code: PkiErrorCode, reason: PkiErrorReason, message: string, options: PkiErrorOptions = {}) {
    super(code, message, { reason, ...(options.cause === undefined ? {} : { cause: options.cause }), ...(options.details === undefined ? {} : { details: options.details }) });
    this.name = 'PkiError';
  }
}
