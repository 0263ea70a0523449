/**
 * The participant daemon's own check of a round's metric slots (participant-app.ts checkRound:
 * checkRoundMetricSlots against the pinned task's loss and labels), against a lying coordinator over real
 * gRPC and mutual TLS (test/support/malicious-coordinator.ts). Which evaluation sums a site puts in the
 * masked upload, and how many, follow from its task; a coordinator that announces another layout - the
 * regression slots dropped (a shorter vector), read as multi-label counts, for another number of targets,
 * or regression slots for a class-index task - is refused with METRIC_SLOTS_MISMATCH before the site makes
 * or sends any key: no AdvertiseKeys reaches the coordinator for that round. The honest layout is taken,
 * and its regression sums come back from the secure sum.
 *
 * Without the check a site would still not put a sum in a slot of another meaning (quantizeUpdate refuses
 * sums of the wrong count), but only after its keys, shares and training: this test fails if the check
 * at round start is deleted.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { RoundMetricSlots } from '../../crypto/secagg/metric-slots.js';
import { STAGE } from '../../crypto/secagg/stages.js';
import { parseTaskDocument, type TaskDocument } from '../../model/task.js';
import { openAttack, type Attack } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import type { MaliciousCoordinator } from '../support/malicious-coordinator.js';
import { writeParquet } from '../support/parquet-writer.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const SITES = ['site-1', 'site-2', 'site-3'];
const FEATURES = ['f0', 'f1', 'f2', 'f3'];
/** Long enough for every site to refuse (or, without the check, to advertise its keys) on a loaded machine. */
const REFUSAL_WAIT_MS = 10_000;

const REGRESSION_TASK: TaskDocument = parseTaskDocument({
  formatVersion: 1,
  model: { kind: 'logreg', inputShape: [FEATURES.length], classes: 1 },
  loss: { kind: 'mse' },
  input: { shape: [FEATURES.length], dtype: 'float32' },
  normalization: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] },
  labels: ['y'],
  inputs: [{ name: 'input', columns: FEATURES, dtype: 'float32', shape: [FEATURES.length] }],
  target: { column: 'y' },
  optimizer: { kind: 'sgd', learningRate: 0.05 },
  training: { epochs: 2, batchSize: 16, proximalMu: 0, seed: 3 },
});

/** 60 rows of y = 2 f0 - f1 + 0.5 f2 + 3 + noise-free, deterministic per site. */
function regressionRows(site: number): Uint8Array {
  const rows = Array.from({ length: 60 }, (_, i) => FEATURES.map((_name, j) => Math.sin(1 + site * 97 + i * 13 + j * 7)));
  const y = rows.map((x) => 2 * (x[0] as number) - (x[1] as number) + 0.5 * (x[2] as number) + 3);
  return writeParquet([
    ...FEATURES.map((name, j) => ({ name, type: 'DOUBLE' as const, values: rows.map((row) => row[j] as number) })),
    { name: 'y', type: 'DOUBLE' as const, values: y },
  ]);
}

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki('fedgate participant-app metric slots CA');
});

interface Outcome {
  /** [site, reason] of each refusal of the round, sorted by site. */
  readonly refusals: [string, string][];
  /** Sites that sent AdvertiseKeys for the round. */
  readonly advertised: string[];
}

/** Runs `config` as far as the sites take it, then ends the round; what the coordinator got. */
async function play(coordinator: MaliciousCoordinator, config: RoundConfig): Promise<Outcome & { readonly metricSums?: readonly number[]; readonly examples?: number }> {
  const round = coordinator.round(config);
  round.start();
  const end = await round.aggregate();
  if (end.status === 'aggregated') round.abort();
  const refusals = end.status === 'aggregated' ? [] : await coordinator.waitForRefusals(config.roundId, SITES, REFUSAL_WAIT_MS);
  const label = round.label;
  const advertised = coordinator.received.filter((stage) => stage.roundId === label && stage.stage === STAGE.advertiseKeys).map((stage) => stage.siteId);
  return {
    refusals: refusals.map((refusal): [string, string] => [refusal.siteId, refusal.reason]).sort(([a], [b]) => a.localeCompare(b)),
    advertised: [...new Set(advertised)].sort(),
    ...(end.status === 'aggregated' ? { metricSums: [...end.result.metricSums], examples: end.result.evalExamples } : {}),
  };
}

const refusedBeforeAnyKey: Outcome = { refusals: SITES.map((siteId): [string, string] => [siteId, 'METRIC_SLOTS_MISMATCH']), advertised: [] };

describe('a regression task: a RoundConfig whose metric slots differ from the task is refused before any key', () => {
  let attack: Attack;
  let counter = 0;

  beforeAll(async () => {
    attack = await openAttack({
      pki,
      task: REGRESSION_TASK,
      federationId: 'participant-app-metric-slots',
      siteIds: SITES,
      setup: (_siteId, index, directory) => {
        const path = join(directory, 'train.parquet');
        writeFileSync(path, regressionRows(index));
        return { data: { format: 'table', path, header: 'auto', test_fraction: 0.25, split_seed: 1 } };
      },
    });
  }, 60_000);

  afterAll(async () => {
    await attack?.close();
  });

  const config = (metricSlots?: RoundMetricSlots | null): RoundConfig =>
    attack.coordinator.roundConfig({ counter: ++counter, participants: SITES, ...(metricSlots === undefined ? {} : { metricSlots }) });

  it.each([
    ['the regression slots dropped (a shorter vector)', null],
    ['the slots announced as multi-label counts', { kind: 'multi_label', outputs: 1 }],
    ['the slots sized for two targets', { kind: 'regression', outputs: 2, maxAbsTarget: 1000, maxAbsError: 1000 }],
  ] as const)('%s: METRIC_SLOTS_MISMATCH, no AdvertiseKeys', async (_name, metricSlots) => {
    expect(await play(attack.coordinator, config(metricSlots))).toEqual(refusedBeforeAnyKey);
  }, 60_000);

  it('the honest layout is taken: every site advertises, and the regression sums come back from the secure sum', async () => {
    const outcome = await play(attack.coordinator, config());
    expect(outcome.refusals).toEqual([]);
    expect(outcome.advertised).toEqual(SITES);
    expect(outcome.examples).toBe(SITES.length * 15);
    const [squaredError, absoluteError, targetSum, targetSquareSum] = outcome.metricSums as number[];
    // The untrained model predicts about 0 for targets around 3: every sum is well away from 0.
    expect(targetSum).toBeGreaterThan(2 * 45);
    expect(targetSquareSum).toBeGreaterThan(targetSum as number);
    expect(squaredError).toBeGreaterThan(0);
    expect(absoluteError).toBeGreaterThan(0);
  }, 120_000);
});

describe('a class-index task: a RoundConfig that adds metric slots is refused before any key', () => {
  let attack: Attack;

  beforeAll(async () => {
    attack = await openAttack({ pki, task: digitsTask(), federationId: 'participant-app-metric-slots-class', siteIds: SITES });
  }, 60_000);

  afterAll(async () => {
    await attack?.close();
  });

  it('regression slots on a digits task: METRIC_SLOTS_MISMATCH, no AdvertiseKeys', async () => {
    const config = attack.coordinator.roundConfig({ counter: 1, participants: SITES, metricSlots: { kind: 'regression', outputs: 10, maxAbsTarget: 1, maxAbsError: 1 } });
    expect(await play(attack.coordinator, config)).toEqual(refusedBeforeAnyKey);
  }, 60_000);
});
