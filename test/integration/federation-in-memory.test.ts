import { afterEach, describe, expect, it } from 'vitest';
import { partitionIid } from '../../participant/data/partition.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { trainTestSplit } from '../../participant/data/split.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import { createInMemoryFederation, DIGITS_MLP_TASK, type InMemoryFederation, type InMemorySiteData } from '../support/in-memory-federation.js';

async function digitsSites(count: number): Promise<InMemorySiteData[]> {
  const digits = normalize(await loadDigits(), DIGITS_MLP_TASK.normalization);
  return partitionIid(digits, { clients: count, seed: 3 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
}

let harness: InMemoryFederation | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function collect(federation: InMemoryFederation['federation']): RoundEvent[] {
  const events: RoundEvent[] = [];
  federation.on('round', (event) => events.push(event));
  return events;
}

describe('federation rounds in memory (real SecAgg+, real training, no network)', () => {
  it('commits rounds whose model is FedAvg of the local updates within the quantisation bound', async () => {
    harness = await createInMemoryFederation({ sites: await digitsSites(4), rounds: 2, minParticipants: 4 });
    const events = collect(harness.federation);
    const before = harness.federation.currentModel.slice();
    await harness.federation.run();
    const committed = events.filter((event) => event.type === 'round_committed');
    expect(committed).toHaveLength(2);
    expect(harness.federation.ledgerRecords.length).toBe(2);
    // Round 2: reference FedAvg from the updates the sites computed in that round (w = examples / W).
    const firstRound = committed[0]?.roundId as string;
    const updates = harness.siteIds.map((siteId) => harness?.localUpdates.get(siteId)?.find((entry) => entry.roundId === firstRound));
    expect(updates.every((entry) => entry !== undefined)).toBe(true);
    const weights = updates.map((entry) => Math.min(entry?.examples ?? 0, 2000) / 2000);
    const weightSum = weights.reduce((a, b) => a + b, 0);
    const afterFirst = new Float32Array(before.length);
    for (let i = 0; i < before.length; i++) {
      let sum = 0;
      updates.forEach((entry, k) => (sum += (weights[k] as number) * (entry?.delta[i] as number)));
      afterFirst[i] = (before[i] as number) + sum / weightSum;
    }
    // One quantisation step is c / M per site and coordinate, M = floor((2^31 - 1) / |U|).
    const step = 1 / Math.floor((2 ** 31 - 1) / 4);
    const tolerance = (4 * step) / weightSum + 1e-6;
    const body = (await harness.federation.ledgerRecords.read(1)).body as { newModelHash: string };
    const stored = await harness.federation.blobs.get(body.newModelHash);
    const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
    // Float32 values end the encoding: compare the last parameter block (the output bias) elementwise.
    for (let k = 1; k <= 10; k++) {
      const actual = view.getFloat32(stored.byteLength - 4 * k, true);
      expect(Math.abs(actual - (afterFirst[before.length - k] as number))).toBeLessThanOrEqual(tolerance);
    }
  });

  it('survives a site lost after ShareKeys and another after MaskedInput (5 sites, complete graph, t = 3)', async () => {
    let lost: string[] = [];
    harness = await createInMemoryFederation({
      sites: await digitsSites(5),
      rounds: 1,
      reconstructionThreshold: 3,
      minParticipants: 5,
      stageDeadlineMs: 2000,
      maskedInputDeadlineMs: 15_000,
      drop: (direction, siteId, what) => {
        if (direction === 'from_site' && siteId === lost[0] && (what === 'masked_input' || what === 'consistency_check' || what === 'unmask' || what === 'commit')) return true;
        if (direction === 'from_site' && siteId === lost[1] && (what === 'consistency_check' || what === 'unmask' || what === 'commit')) return true;
        return false;
      },
    });
    lost = [harness.siteIds[1] as string, harness.siteIds[3] as string];
    const events = collect(harness.federation);
    await harness.federation.run();
    const committed = events.find((event) => event.type === 'round_committed');
    expect(committed?.survivors).toEqual(harness.siteIds.filter((id) => !lost.includes(id) || id === lost[1]));
    expect(harness.federation.committedRounds).toBe(1);
  });

  it('aborts a round with too few survivors and starts the next under a new id', async () => {
    let dropAll = true;
    harness = await createInMemoryFederation({
      sites: await digitsSites(3),
      rounds: 1,
      minParticipants: 3,
      stageDeadlineMs: 1000,
      drop: (direction, siteId, what) => {
        if (dropAll && direction === 'from_site' && siteId !== 'mem-00' && what === 'share_keys') return true;
        return false;
      },
    });
    const events = collect(harness.federation);
    harness.federation.on('round', (event) => {
      if (event.type === 'round_aborted') dropAll = false;
    });
    await harness.federation.run();
    const aborted = events.filter((event) => event.type === 'round_aborted');
    const committed = events.filter((event) => event.type === 'round_committed');
    expect(aborted.length).toBeGreaterThanOrEqual(1);
    expect(committed).toHaveLength(1);
    expect(committed[0]?.roundId).not.toBe(aborted[0]?.roundId);
    expect(BigInt(committed[0]?.roundCounter ?? 0)).toBeGreaterThan(BigInt(aborted[0]?.roundCounter ?? 0));
  });
});
