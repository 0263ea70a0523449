/** A configuration file that cannot be used: the message names the file, the key, the bad value and what is expected. */
export class ConfigError extends Error {
  readonly code = 'INVALID_ARGUMENT' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
