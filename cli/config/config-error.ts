import { FedgateError } from '../../platform/index.js';

/** A configuration file that cannot be used: the message names the file, the key, the bad value and what is expected. */
export class ConfigError extends FedgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, { reason: 'INVALID_CONFIG', ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'ConfigError';
  }
}
