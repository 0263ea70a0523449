/**
 * Keeps the coordinator's memory flat over months of rounds. Each round leaves tens to hundreds of KB of
 * objects that lived through the round (messages, transcripts, certificates) in V8's old generation,
 * and V8 collects that only every few hundred rounds when rounds run back to back, so RSS climbs for
 * hundreds of rounds and drops at each collection (bench/round.ts: +43 MiB over 500 short rounds; with
 * a full collection forced every 2 s the live heap grew 1 MiB over 450 rounds). V8's own idle-time
 * collection only starts after seconds without allocation, which a busy coordinator never has.
 *
 * So after a round commits - the moment the round's objects have died and the next round has not
 * started - the coordinator runs one full collection if the heap has grown by `growthBytes` (or by a
 * quarter of what the last collection left live, whichever is more) since then. V8 only gives scripts
 * a collection function under --expose-gc (taken from a fresh realm, platform/flagged-builtin.ts; it collects
 * the whole isolate). Where that fails, nothing is forced and V8's schedule applies.
 */
import { getHeapStatistics } from 'node:v8';
import { flaggedBuiltin } from '../../platform/index.js';

/** Heap growth (bytes) that triggers a collection between rounds. */
export const DEFAULT_COMPACTION_GROWTH_BYTES = 8 * 1024 * 1024;

let collector: (() => void) | null | undefined;

function fullCollection(): (() => void) | null {
  const gc = flaggedBuiltin('--expose-gc', 'gc');
  return typeof gc === 'function' ? () => void (gc as () => unknown)() : null;
}

export class HeapCompactor {
  private baseline = getHeapStatistics().used_heap_size;
  private readonly collect = (collector ??= fullCollection());

  constructor(private readonly growthBytes: number = DEFAULT_COMPACTION_GROWTH_BYTES) {}

  /** Whether a collection function is available on this runtime. */
  get available(): boolean {
    return this.collect !== null;
  }

  /**
   * Call between rounds; returns true if it collected. The threshold grows with the heap (a quarter of
   * what was live after the last collection), so a large coordinator is not paused after every round.
   */
  betweenRounds(): boolean {
    const threshold = Math.max(this.growthBytes, this.baseline / 4);
    if (this.collect === null || getHeapStatistics().used_heap_size - this.baseline < threshold) return false;
    this.collect();
    this.baseline = getHeapStatistics().used_heap_size;
    return true;
  }
}
