/**
 * The one error type of crypto/. crypto/ imports nothing of ours, so this is not a FedgateError, but it
 * has the same shape: a `code` that the service edge maps onto a gRPC status (the names are gRPC's, a
 * subset of FedgateCode) and a machine-readable UPPER_SNAKE_CASE `reason` that tests and logs match on;
 * the message is for humans and names the argument, the bad value and what was expected. Messages never
 * contain key material. proto/status.ts checks at compile time that both types fit fedgate's.
 */

/** gRPC status names used by crypto/ (a subset of grpc.status). */
export type CryptoErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED'
  | 'ABORTED'
  | 'DATA_LOSS'
  | 'INTERNAL';

/**
 * Stable UPPER_SNAKE_CASE identifier of a failure, e.g. 'SHARE_DECRYPT_FAILED' (the casing every fedgate
 * reason has on the wire); a lower-case literal does not compile.
 */
export type CryptoErrorReason = Uppercase<string>;

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;
  readonly reason: CryptoErrorReason;

  constructor(code: CryptoErrorCode, reason: CryptoErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options === undefined ? undefined : { cause: options.cause });
    this.name = 'CryptoError';
    this.code = code;
    this.reason = reason;
  }
}

/** Shorthand for the most common case: a caller passed a value outside the documented domain. */
export function invalidArgument(reason: CryptoErrorReason, message: string): CryptoError {
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
