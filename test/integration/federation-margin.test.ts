/**
 * The collusion margin end to end in memory: a coordinator's automatic (k, t) is accepted by sites that
 * keep the default policy (the three-site federation gets t = 3), and a round that default sites would
 * refuse is named in the coordinator's log once, with the sites' reason code.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { partitionIid } from '../../participant/data/partition.js';
import { trainTestSplit } from '../../participant/data/split.js';
import { createInMemoryFederation, DIGITS_MLP_TASK, type InMemoryFederation, type InMemorySiteData } from '../support/in-memory-federation.js';

/** The site.yaml defaults of the margin (the harness turns them off unless asked). */
const DEFAULT_MARGIN = { minToleratedColluders: 1, minNeighbourDegree: 40, completeGraphUpTo: 100, requireTwoThirdsThreshold: true, minThreshold: 3 } as const;

async function digitsSites(count: number): Promise<InMemorySiteData[]> {
  const digits = normalize(await loadDigits(), DIGITS_MLP_TASK.normalization);
  return partitionIid(digits, { clients: count, seed: 5 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
}

function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

const BELOW_DEFAULT = 'this round is below the default site policy';

let harness: InMemoryFederation | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('the collusion margin in a running federation', () => {
  it('three sites with the default policy accept the coordinator\'s automatic round (complete graph, t = 3)', async () => {
    const { logger, lines } = capturingLogger();
    harness = await createInMemoryFederation({ sites: await digitsSites(3), rounds: 1, minParticipants: 3, policy: DEFAULT_MARGIN, logger });
    const events: RoundEvent[] = [];
    harness.federation.on('round', (event) => events.push(event));
    await harness.federation.run();
    expect(events.filter((event) => event.type === 'round_committed').map((event) => event.survivors)).toEqual([harness.siteIds]);
    expect(harness.federation.committedRounds).toBe(1);
    expect(lines.filter((line) => String(line['msg']).startsWith(BELOW_DEFAULT))).toEqual([]);
  });

  it('names a round of two sites as one default sites refuse, once, with their reason code', async () => {
    const { logger, lines } = capturingLogger();
    // These two sites lowered their margin (the harness default), so the rounds still run.
    harness = await createInMemoryFederation({ sites: await digitsSites(2), rounds: 2, minParticipants: 2, logger });
    await harness.federation.run();
    expect(harness.federation.committedRounds).toBe(2);
    const warnings = lines.filter((line) => String(line['msg']).startsWith(BELOW_DEFAULT));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ participants: 2, neighbourDegree: 1, threshold: 2, reason: 'TOO_FEW_TOLERATED_COLLUDERS' });
  });
});
