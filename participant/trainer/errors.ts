/**
 * The error type of participant/trainer, a FedgateError: a gRPC status name as `code`, a stable
 * UPPER_SNAKE_CASE `reason`, and a message that names the option or tensor, the bad value and what was
 * expected. Errors raised inside the worker thread cross to the main thread as plain data (structured
 * clone drops class identity) and are rebuilt here with `fromWire`.
 */
import { CryptoError } from '../../crypto/errors.js';
import { ModelError } from '../../model/errors.js';
import { FedgateError, isFedgateReason, type FedgateReason } from '../../platform/index.js';

export type TrainerErrorCode =
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'CANCELLED'
  | 'RESOURCE_EXHAUSTED'
  | 'INTERNAL';

const CODES: ReadonlySet<string> = new Set<TrainerErrorCode>(['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'ABORTED', 'CANCELLED', 'RESOURCE_EXHAUSTED', 'INTERNAL']);

export class TrainerError extends FedgateError {
  declare readonly code: TrainerErrorCode;

  /** `reason`: stable identifier of the failure, e.g. 'CUDA_UNAVAILABLE', 'WORKER_CRASHED'. */
  constructor(code: TrainerErrorCode, reason: FedgateReason, message: string, options?: { cause?: unknown }) {
    super(code, message, { reason, ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'TrainerError';
  }
}

/** An error as posted between the worker and the main thread. */
export interface WireError {
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  readonly stack?: string;
}

/**
 * Flattens any thrown value for postMessage. Only fedgate's error classes keep their code (when the
 * trainer may raise it) and reason; anything else becomes INTERNAL with reason WORKER_ERROR.
 */
export function toWire(error: unknown): WireError {
  if (error instanceof FedgateError || error instanceof CryptoError || error instanceof ModelError) {
    return {
      code: CODES.has(error.code) ? error.code : 'INTERNAL',
      reason: error.reason,
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  if (error instanceof Error) {
    return { code: 'INTERNAL', reason: 'WORKER_ERROR', message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) };
  }
  return { code: 'INTERNAL', reason: 'WORKER_ERROR', message: String(error) };
}

/** Rebuilds a TrainerError on the main thread; the worker's stack is kept as the cause. */
export function fromWire(wire: WireError): TrainerError {
  const code = (CODES.has(wire.code) ? wire.code : 'INTERNAL') as TrainerErrorCode;
  const cause = wire.stack === undefined ? undefined : Object.assign(new Error(wire.message), { stack: wire.stack });
  const reason = isFedgateReason(wire.reason) ? wire.reason : 'WORKER_ERROR';
  return new TrainerError(code, reason, wire.message, cause === undefined ? undefined : { cause });
}

export function invalidArgument(reason: FedgateReason, message: string): TrainerError {
  return new TrainerError('INVALID_ARGUMENT', reason, message);
}
