/**
 * The error of class `type` that `action` throws; any other error is rethrown, and nothing thrown fails
 * the test. For reading a refusal's code and message without a try/catch in every test.
 */
export function thrownBy<E extends Error>(type: abstract new (...args: never[]) => E, action: () => unknown): E {
  try {
    action();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}, nothing was thrown`);
}

/** The error of class `type` that `promise` rejects with; any other error is rethrown, and fulfilment fails the test. */
export async function rejectedBy<E extends Error>(type: abstract new (...args: never[]) => E, promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}, the promise was fulfilled`);
}
