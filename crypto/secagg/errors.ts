/**
 * Errors of the SecAgg+ state machines. A `SecAggError` is a `CryptoError` (same `code` values, mapped
 * once to a gRPC status at the service edge) that also says where it came from: the protocol stage and,
 * when one is to blame, the site. `reason` is a stable UPPER_SNAKE_CASE identifier that callers and tests
 * match on; messages name the field, the bad value and what was expected, and never contain secrets.
 */
import { CryptoError, type CryptoErrorCode, type CryptoErrorReason } from '../errors.js';

/** Where in the round an error arose (the stage being processed when it was thrown). */
export interface SecAggErrorContext {
  /** Protocol stage, e.g. 'share_keys'. */
  readonly stage?: string;
  /** The site the error is about (sender of a rejected message, or the site refusing). */
  readonly site?: string;
  readonly cause?: unknown;
}

export class SecAggError extends CryptoError {
  readonly stage: string | undefined;
  readonly site: string | undefined;

  constructor(code: CryptoErrorCode, reason: CryptoErrorReason, message: string, context: SecAggErrorContext = {}) {
    const where = [context.stage === undefined ? '' : `stage ${context.stage}`, context.site === undefined ? '' : `site ${JSON.stringify(context.site)}`]
      .filter((part) => part !== '')
      .join(', ');
    super(code, reason, where === '' ? message : `${message} (${where})`, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'SecAggError';
    this.stage = context.stage;
    this.site = context.site;
  }
}

/** A message or argument outside the protocol's domain: wrong length, wrong round, unknown stage. */
export function secaggInvalid(reason: CryptoErrorReason, message: string, context?: SecAggErrorContext): SecAggError {
  return new SecAggError('INVALID_ARGUMENT', reason, message, context);
}

/** A well-formed request that the current state or the site's policy does not allow. */
export function secaggPrecondition(reason: CryptoErrorReason, message: string, context?: SecAggErrorContext): SecAggError {
  return new SecAggError('FAILED_PRECONDITION', reason, message, context);
}

/** A signature, certificate or identity that does not check out. */
export function secaggDenied(reason: CryptoErrorReason, message: string, context?: SecAggErrorContext): SecAggError {
  return new SecAggError('PERMISSION_DENIED', reason, message, context);
}

/** The round cannot complete; it is over and a new round (new id) must start. */
export function secaggAborted(reason: CryptoErrorReason, message: string, context?: SecAggErrorContext): SecAggError {
  return new SecAggError('ABORTED', reason, message, context);
}
