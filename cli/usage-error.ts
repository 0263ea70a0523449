/** A command line that cannot be run as written (exit code 2). */
export class UsageError extends Error {
  readonly code = 'INVALID_ARGUMENT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
