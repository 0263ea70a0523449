import { SecAggError } from '../../crypto/secagg/errors.js';
import { thrownBy } from './thrown.js';

/** The SecAggError `action` throws; any other error is rethrown, and nothing thrown fails the test. */
export const secaggRefusal = (action: () => unknown): SecAggError => thrownBy(SecAggError, action);
