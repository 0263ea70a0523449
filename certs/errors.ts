/**
 * The one error type of certs/. It carries the same shape as proto's FedgateError (a gRPC-style `code`
 * plus a specific `reason`) so the service edge maps it by its code, but certs/ imports nothing of ours.
 */

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

export class PkiError extends Error {
  override readonly name = 'PkiError';
  readonly code: PkiErrorCode;
  readonly reason: PkiErrorReason;
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(code: PkiErrorCode, reason: PkiErrorReason, message: string, options: PkiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = reason;
    this.details = options.details ?? {};
  }
}
