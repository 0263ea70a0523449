/**
 * The one error type of crypto/. Every failure carries a `code` that the service edge maps onto a gRPC
 * status (the names are gRPC's) and a machine-readable `reason` that tests and logs match on; the
 * message is for humans and names the argument, the bad value and what was expected. Messages never
 * contain key material.
 */

/** gRPC status names used by crypto/ (a subset of grpc.status). */
export type CryptoErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED'
  | 'ABORTED'
  | 'DATA_LOSS'
  | 'INTERNAL';

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  /** Stable snake_case identifier of the failure, e.g. 'share_decrypt_failed'. */
  readonly reason: string;

  constructor(code: CryptoErrorCode, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options === undefined ? undefined : { cause: options.cause });
    this.name = 'CryptoError';
    this.code = code;
    this.reason = reason;
  }
}

/** Shorthand for the most common case: a caller passed a value outside the documented domain. */
export function invalidArgument(reason: string, message: string): CryptoError {
  return new CryptoError('INVALID_ARGUMENT', reason, message);
}

/**
 * Describes a value for an error message without echoing its content (which may be secret): its type,
 * and for byte arrays and strings only their length.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.constructor.name} of ${value.length} bytes`;
  if (typeof value === 'string') return `string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `array of ${value.length} elements`;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}
