/**
 * Which connected sites take part in a round: every eligible site, or a sample of fraction C (McMahan et
 * al. 2017). The sample is a deterministic function of a persisted sampling seed and the round counter,
 * so the "sampling RNG state" of DESIGN.md survives a crash with nothing more than the seed and the
 * counter that is fsynced before each round anyway, and anyone holding the seed can replay the choice.
 */
import { createHmac } from 'node:crypto';

export interface SelectionInput {
  /** Connected sites that accept the task (order does not matter). */
  readonly eligible: readonly string[];
  /** C in (0, 1]. */
  readonly fraction: number;
  /** Fewest participants a round may have. */
  readonly minimum: number;
  readonly samplingSeed: Uint8Array;
  readonly roundCounter: bigint;
}

/** Returns the selected site ids in UTF-8 byte order, or undefined when fewer than `minimum` are eligible. */
export function selectParticipants(input: SelectionInput): string[] | undefined {
  const eligible = [...new Set(input.eligible)];
  if (eligible.length < input.minimum) return undefined;
  const wanted = Math.min(eligible.length, Math.max(input.minimum, Math.ceil(input.fraction * eligible.length)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(input.roundCounter);
  const ranked = eligible
    .map((siteId) => ({ siteId, rank: createHmac('sha256', input.samplingSeed).update(counter).update(siteId, 'utf8').digest() }))
    .sort((a, b) => Buffer.compare(a.rank, b.rank));
  return ranked
    .slice(0, wanted)
    .map((entry) => entry.siteId)
    .sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}
