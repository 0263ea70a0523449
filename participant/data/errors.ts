/**
 * The error type of participant/data, a FedgateError: a `code` named after the gRPC status the service
 * edge would map it to and a stable UPPER_SNAKE_CASE `reason` that tests and logs match on.
 * The message is for the operator: it names the file, row and column (or argument), the bad value and
 * what was expected, because a site operator fixing a 60,000-row CSV needs to know exactly where to look.
 */
import { FedgateError, type FedgateReason } from '../../platform/index.js';

export type DataErrorCode = 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'NOT_FOUND' | 'DATA_LOSS' | 'RESOURCE_EXHAUSTED';

export class DataError extends FedgateError {
  declare readonly code: DataErrorCode;

  /** `reason`: stable identifier of the failure, e.g. 'CSV_NON_NUMERIC_CELL'. */
  constructor(code: DataErrorCode, reason: FedgateReason, message: string, options?: { cause?: unknown }) {
    super(code, message, { reason, ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'DataError';
  }
}

/** A caller passed an option outside its documented domain. */
export function invalidOption(reason: FedgateReason, message: string): DataError {
  return new DataError('INVALID_ARGUMENT', reason, message);
}

/** Shortens a cell or value for an error message so a multi-megabyte line never ends up in a log. */
export function quoteValue(value: string, maxLength = 40): string {
  const shown = value.length > maxLength ? `${value.slice(0, maxLength)}...` : value;
  return JSON.stringify(shown);
}

/** Checks that `value` is an integer in [min, max]; the message names the option. */
export function requireInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw invalidOption('INVALID_OPTION', `${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}
