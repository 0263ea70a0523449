/**
 * How a site reads a pinned task document for its own checks (participant/daemon/task-document.ts): parsed
 * from the bytes fetched by its hash, cached per hash, and a failed read forgotten so the next round
 * fetches again instead of failing forever on a transient error.
 */
import { describe, expect, it } from 'vitest';
import { cachedByHash, fetchTaskDocument } from '../../../../participant/daemon/task-document.js';
import { DIGITS_MLP_TASK } from '../../../support/in-memory-federation.js';
import { rejectedBy } from '../../../support/thrown.js';

const hash = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('fetchTaskDocument', () => {
  it('parses the fetched bytes into the task document', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify(DIGITS_MLP_TASK));
    const task = await fetchTaskDocument({ fetch: async () => bytes }, hash);
    expect(task.model).toEqual(DIGITS_MLP_TASK.model);
  });

  it('refuses bytes that are not JSON, naming the task hash', async () => {
    const error = await rejectedBy(Error, fetchTaskDocument({ fetch: async () => new TextEncoder().encode('{not json') }, hash));
    expect(error.message).toBe(`task ${Buffer.from(hash).toString('hex')} is not a JSON task document`);
  });
});

describe('cachedByHash', () => {
  it('loads once per hash and hands every caller the same promise', async () => {
    const cache = new Map<string, Promise<number>>();
    let loads = 0;
    const load = async (): Promise<number> => ++loads;
    const first = cachedByHash(cache, hash, load);
    expect(cachedByHash(cache, hash, load)).toBe(first);
    expect(await first).toBe(1);
    expect(await cachedByHash(cache, Uint8Array.from(hash).reverse(), load)).toBe(2);
    expect(loads).toBe(2);
  });

  it('forgets a load that failed, so the next call loads again', async () => {
    const cache = new Map<string, Promise<string>>();
    let attempts = 0;
    const load = async (): Promise<string> => {
      attempts += 1;
      if (attempts === 1) throw new Error('blob not reachable');
      return 'loaded';
    };
    await expect(cachedByHash(cache, hash, load)).rejects.toThrow('blob not reachable');
    expect(cache.size).toBe(0);
    expect(await cachedByHash(cache, hash, load)).toBe('loaded');
    expect(attempts).toBe(2);
  });
});
