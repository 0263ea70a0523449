/**
 * The one error type of fedgate outside its two pure folders (connect-es `ConnectError`, flower's error
 * catalog). Every error class of proto/, coordinator/, participant/, certs/ and cli/ extends
 * FedgateError; crypto/ and model/ import nothing of ours and keep CryptoError and ModelError with the
 * same shape (a `code` from this union, an upper-case `reason`). proto/status.ts maps exactly these
 * three classes to a gRPC status, by type.
 *
 * It lives in platform/ rather than proto/ because certs/ (which may import only crypto/ and platform/)
 * has errors of its own that the CLI and the Admin service report like any other.
 *
 * `code` is a gRPC status name, so a misspelt code is a compile error. `reason` is a stable,
 * specific UPPER_SNAKE_CASE tag (what the wire's `fedgate-reason` trailer carries) for callers and tests
 * to branch on; the type rejects a lower-case literal at compile time.
 *
 * The message of a FedgateError is sent to the peer (unless its code is INTERNAL or UNKNOWN): it names
 * the field, the bad value and what was expected, and never contains a secret. Anything only the local
 * operator should see goes in `details` (logged, never sent).
 */

/** gRPC status codes by name (https://grpc.github.io/grpc/core/md_doc_statuscodes.html), OK excluded. */
export const FEDGATE_CODES = [
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type FedgateCode = (typeof FEDGATE_CODES)[number];

export function isFedgateCode(value: unknown): value is FedgateCode {
  return typeof value === 'string' && (FEDGATE_CODES as readonly string[]).includes(value);
}

/**
 * A reason tag such as 'HASH_MISMATCH'. `Uppercase<string>` makes a literal with a lower-case letter
 * a compile error; REASON_PATTERN is the full rule, checked where a reason arrives from outside.
 */
export type FedgateReason = Uppercase<string>;

/** Upper-case letters, digits and underscores, starting with a letter, at most 64 characters. */
export const REASON_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

export function isFedgateReason(value: unknown): value is FedgateReason {
  return typeof value === 'string' && REASON_PATTERN.test(value);
}

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export interface FedgateErrorOptions {
  /** Specific, stable tag such as 'HASH_MISMATCH'; @default the code */
  readonly reason?: FedgateReason;
  readonly cause?: unknown;
  /** Context for the local log (round, stage, site, file); never sent to the peer. */
  readonly details?: ErrorDetails;
}

export class FedgateError extends Error {
  override name = 'FedgateError';
  readonly code: FedgateCode;
  readonly reason: FedgateReason;
  readonly details: ErrorDetails;

  constructor(code: FedgateCode, message: string, options: FedgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason ?? code;
    this.details = options.details ?? {};
  }
}

/** Shorthand used across the wire layer: `fedgateError('INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK', '...')`. */
export function fedgateError(code: FedgateCode, reason: FedgateReason, message: string, details?: ErrorDetails): FedgateError {
  return new FedgateError(code, message, details === undefined ? { reason } : { reason, details });
}
