/**
 * Errors of the coordinator's persisted state: always name the file and what to do about it. The code
 * follows from the reason, so the service edge and the CLI report what happened, not "data loss" for
 * everything:
 * - NOT_FOUND: a model, record or export that the state does not hold.
 * - LOCKED: another coordinator holds the state directory. FAILED_PRECONDITION, not UNAVAILABLE: retrying
 *   does not help until an operator stops the other coordinator (or removes a stale lock file).
 * - IO_FAILED: the file system refused a read or write (permissions, disk full). INTERNAL: the peer can do
 *   nothing about it and the message names local paths, so the peer gets the generic message and the
 *   operator's log the details (platform/atomic-file.ts reports its failures the same way).
 * - CORRUPT, CHAIN_BROKEN: stored bytes that fail their checks. DATA_LOSS.
 * - UNSUPPORTED_VERSION: a format this build does not read (written by a newer fedgate). FAILED_PRECONDITION.
 */
import { FedgateError, type FedgateCode } from '../../platform/index.js';

export type StateErrorReason = 'IO_FAILED' | 'CORRUPT' | 'UNSUPPORTED_VERSION' | 'NOT_FOUND' | 'CHAIN_BROKEN' | 'LOCKED';

export const STATE_ERROR_CODES: Readonly<Record<StateErrorReason, FedgateCode>> = {
  NOT_FOUND: 'NOT_FOUND',
  LOCKED: 'FAILED_PRECONDITION',
  IO_FAILED: 'INTERNAL',
  CORRUPT: 'DATA_LOSS',
  CHAIN_BROKEN: 'DATA_LOSS',
  UNSUPPORTED_VERSION: 'FAILED_PRECONDITION',
};

export class StateError extends FedgateError {
  declare readonly reason: StateErrorReason;

  constructor(reason: StateErrorReason, message: string, options?: { cause?: unknown }) {
    super(STATE_ERROR_CODES[reason], message, { reason, ...(options?.cause === undefined ? {} : { cause: options.cause }) });
    this.name = 'StateError';
  }
}
