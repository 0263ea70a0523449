import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { HeapCompactor } from '../../../../coordinator/service/heap-compaction.js';

/** Objects that outlive a young-generation collection, as a round's state does, then become garbage. */
function roundGarbage(megabytes: number): number {
  let kept: { id: number; label: string; values: number[] }[] = [];
  for (let i = 0; i < megabytes * 2000; i++) kept.push({ id: i, label: `message ${i}`, values: [i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7, i + 8, i + 9] });
  const count = kept.length;
  kept = [];
  return count;
}

describe('HeapCompactor (full collection between rounds once the heap has grown)', () => {
  it('collects once the heap has grown past the threshold, and not before', () => {
    const compactor = new HeapCompactor(4 * 1024 * 1024);
    expect(compactor.available).toBe(true);
    expect(compactor.betweenRounds()).toBe(false);
    expect(roundGarbage(48)).toBeGreaterThan(0);
    const before = getHeapStatistics().used_heap_size;
    expect(compactor.betweenRounds()).toBe(true);
    expect(getHeapStatistics().used_heap_size).toBeLessThan(before);
    expect(compactor.betweenRounds()).toBe(false);
  });

  it('leaves the heap alone below a large threshold', () => {
    const compactor = new HeapCompactor(1024 * 1024 * 1024);
    roundGarbage(4);
    expect(compactor.betweenRounds()).toBe(false);
  });
});
