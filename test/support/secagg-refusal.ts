import { SecAggError } from '../../crypto/secagg/errors.js';

/** The SecAggError `action` throws; any other error is rethrown, and nothing thrown fails the test. */
export function secaggRefusal(action: () => unknown): SecAggError {
  try {
    action();
  } catch (error) {
    if (error instanceof SecAggError) return error;
    throw error;
  }
  throw new Error('expected a SecAggError, nothing was thrown');
}
