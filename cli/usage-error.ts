import { FedgateError } from '../platform/index.js';

/** A command line that cannot be run as written (exit code 2). */
export class UsageError extends FedgateError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, { reason: 'INVALID_USAGE' });
    this.name = 'UsageError';
  }
}
