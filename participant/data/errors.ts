/**
 * The error type of participant/data. Like every fedgate error it carries a `code` named after the gRPC
 * status the service edge would map it to and a stable snake_case `reason` that tests and logs match on.
 * The message is for the operator: it names the file, row and column (or argument), the bad value and
 * what was expected, because a site operator fixing a 60,000-row CSV needs to know exactly where to look.
 */

export type DataErrorCode = 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'NOT_FOUND' | 'DATA_LOSS' | 'RESOURCE_EXHAUSTED';

export class DataError extends Error {
  readonly code: DataErrorCode;
  /** Stable identifier of the failure, e.g. 'csv_non_numeric_cell'. */
  readonly reason: string;

  constructor(code: DataErrorCode, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options === undefined ? undefined : { cause: options.cause });
    this.name = 'DataError';
    this.code = code;
    this.reason = reason;
  }
}

/** A caller passed an option outside its documented domain. */
export function invalidOption(reason: string, message: string): DataError {
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
    throw invalidOption('invalid_option', `${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}
