/**
 * A federation whose task asks for participant-level DP, in memory (real SecAgg+, real training, no
 * network): the coordinator puts the task's DP into every RoundConfig, each site checks it against its
 * task, encodes its clipped delta with the distributed discrete Gaussian, and every site recomputes model
 * r+1 from the decoded aggregate before signing the commit. Model r+1 is model r plus the mean of the
 * survivors' clipped deltas, within the noise the task asks for.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import { pinTask, taskHash, type TaskDocument } from '../../model/index.js';
import { partitionIid } from '../../participant/data/partition.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { trainTestSplit } from '../../participant/data/split.js';
import { createInMemoryFederation, DIGITS_MLP_TASK, type InMemoryFederation, type InMemorySiteData } from '../support/in-memory-federation.js';

async function digitsSites(count: number): Promise<InMemorySiteData[]> {
  const digits = normalize(await loadDigits(), DIGITS_MLP_TASK.normalization);
  return partitionIid(digits, { clients: count, seed: 3 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
}

const participantLevel = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 0.2, toleratedColluders: 1, ringBits: 24 };
const task: TaskDocument = { ...DIGITS_MLP_TASK, privacy: { participantLevel } };

let harness: InMemoryFederation | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('participant-level distributed DP in a federation (in memory)', () => {
  it('commits a round whose model moves by the mean of the clipped deltas within the noise; the round reports bits and the wrap bound', async () => {
    const hash = toHex(fromHex(taskHash(pinTask(task))));
    harness = await createInMemoryFederation({
      sites: await digitsSites(5),
      rounds: 1,
      minParticipants: 5,
      task,
      policy: { participantLevelDp: new Map([[hash, participantLevel]]) },
    });
    const events: RoundEvent[] = [];
    harness.federation.on('round', (event) => events.push(event));
    const before = harness.federation.currentModel.slice();
    await harness.federation.run();
    expect(events.filter((event) => event.type === 'round_committed')).toHaveLength(1);
    const started = events.find((event) => event.type === 'round_started');
    expect(started?.distributedDp).toMatchObject({ mechanism: 'discrete_gaussian', ringBits: 24, bitsPerCoordinate: 24, noiseStd: 0.2, toleratedColluders: 1 });
    expect(started?.distributedDp?.wrapProbabilityBound).toBeLessThanOrEqual(2 ** -30);

    const after = harness.federation.currentModel;
    const survivors = harness.siteIds;
    const deltas = survivors.map((siteId) => {
      const delta = Float64Array.from(harness!.localUpdates.get(siteId)![0]!.delta);
      const norm = Math.hypot(...delta);
      return norm > 1 ? delta.map((v) => v / norm) : delta;
    });
    // Every site's noise share is (gamma sigma c)^2 / (t - colluders) with t = 4 here: the mean over the
    // 5 survivors carries std sigma c sqrt(5 / 3) / 5 per coordinate (up to the ceil and the rounding).
    const meanStd = (0.2 * Math.sqrt(5 / 3)) / 5;
    let squared = 0;
    for (let i = 0; i < before.length; i++) {
      const mean = deltas.reduce((total, delta) => total + delta[i]!, 0) / deltas.length;
      const error = after[i]! - before[i]! - mean;
      squared += error * error;
    }
    const ratio = Math.sqrt(squared / before.length) / meanStd;
    expect(before.length).toBeGreaterThan(1000);
    expect(ratio).toBeGreaterThan(0.85);
    expect(ratio).toBeLessThan(1.15);
  }, 120_000);

  it('a site whose task asks for more noise than the coordinator states refuses every round (DP_PARAMETERS_MISMATCH)', async () => {
    const logged: string[] = [];
    const hash = toHex(fromHex(taskHash(pinTask(task))));
    harness = await createInMemoryFederation({
      sites: await digitsSites(3),
      rounds: 1,
      minParticipants: 3,
      stageDeadlineMs: 1000,
      task,
      logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(line) }),
      // The sites' view of the task's DP differs from what the coordinator sends (as if it lied about the noise).
      policy: { participantLevelDp: new Map([[hash, { ...participantLevel, noiseMultiplier: 0.4 }]]) },
    });
    const events: RoundEvent[] = [];
    const stop = new AbortController();
    harness.federation.on('round', (event) => {
      events.push(event);
      if (event.type === 'round_aborted') stop.abort();
    });
    await harness.federation.run(stop.signal);
    expect(events.filter((event) => event.type === 'round_committed')).toHaveLength(0);
    expect(events.some((event) => event.type === 'round_aborted')).toBe(true);
    expect(logged.join('\n')).toContain('DP_PARAMETERS_MISMATCH');
  }, 120_000);
});
