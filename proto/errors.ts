/**
 * The one error type of fedgate's wire layer and of the code built on it (coordinator, participant).
 * Its `code` is a gRPC status name, so one translator (status.ts) maps any error to a status at the
 * service edge; its `reason` is a stable, specific tag for callers and tests to branch on.
 *
 * The message of a FedgateError is sent to the peer: it names the field, the bad value and what was
 * expected, and never contains a secret. Anything only the local operator should see goes in
 * `details` (logged, never sent).
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

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export interface FedgateErrorOptions {
  /** Specific, stable tag such as 'HASH_MISMATCH'; @default the code */
  readonly reason?: string;
  readonly cause?: unknown;
  /** Context for the local log (round, stage, site, file); never sent to the peer. */
  readonly details?: ErrorDetails;
}

export class FedgateError extends Error {
  override readonly name = 'FedgateError';
  readonly code: FedgateCode;
  readonly reason: string;
  readonly details: ErrorDetails;

  constructor(code: FedgateCode, message: string, options: FedgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason ?? code;
    this.details = options.details ?? {};
  }
}

/** Shorthand used across the wire layer: `fedgateError('INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK', '...')`. */
export function fedgateError(code: FedgateCode, reason: string, message: string, details?: ErrorDetails): FedgateError {
  return new FedgateError(code, message, details === undefined ? { reason } : { reason, details });
}
