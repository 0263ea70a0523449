/**
 * The error type of participant/trainer, with the same shape as the other fedgate errors: a gRPC status
 * name as `code`, a stable snake_case `reason`, and a message that names the option or tensor, the bad
 * value and what was expected. Errors raised inside the worker thread cross to the main thread as plain
 * data (structured clone drops class identity) and are rebuilt here with `fromWire`.
 */

export type TrainerErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'CANCELLED'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL';

const CODES: ReadonlySet<string> = new Set<TrainerErrorCode>(['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'ABORTED', 'CANCELLED', 'RESOURCE_EXHAUSTED', 'INTERNAL']);

export class TrainerError extends Error {
  readonly code: TrainerErrorCode;
  /** Stable identifier of the failure, e.g. 'cuda_unavailable', 'worker_crashed'. */
  readonly reason: string;

  constructor(code: TrainerErrorCode, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options === undefined ? undefined : { cause: options.cause });
    this.name = 'TrainerError';
    this.code = code;
    this.reason = reason;
  }
}

/** An error as posted between the worker and the main thread. */
export interface WireError {
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  readonly stack?: string;
}

/** Flattens any thrown value for postMessage; errors without a code become INTERNAL. */
export function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const { code, reason } = error as Partial<Record<'code' | 'reason', unknown>>;
    return {
      code: typeof code === 'string' && CODES.has(code) ? code : 'INTERNAL',
      reason: typeof reason === 'string' ? reason : 'worker_error',
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { code: 'INTERNAL', reason: 'worker_error', message: String(error) };
}

/** Rebuilds a TrainerError on the main thread; the worker's stack is kept as the cause. */
export function fromWire(wire: WireError): TrainerError {
  const code = (CODES.has(wire.code) ? wire.code : 'INTERNAL') as TrainerErrorCode;
  const cause = wire.stack === undefined ? undefined : Object.assign(new Error(wire.message), { stack: wire.stack });
  return new TrainerError(code, wire.reason, wire.message, cause === undefined ? undefined : { cause });
}

export function invalidArgument(reason: string, message: string): TrainerError {
  return new TrainerError('INVALID_ARGUMENT', reason, message);
}
