/** Errors of the coordinator's persisted state: always name the file and what to do about it. */
export type StateErrorReason =
  | 'io_failed'
  | 'corrupt'
  | 'unsupported_version'
  | 'not_found'
  | 'chain_broken'
  | 'locked';

export class StateError extends Error {
  /** gRPC-style code, so the service edge maps it like any other error. */
  readonly code = 'DATA_LOSS' as const;
  readonly reason: StateErrorReason;

  constructor(reason: StateErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateError';
    this.reason = reason;
  }
}
