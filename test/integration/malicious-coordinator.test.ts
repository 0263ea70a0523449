/**
 * A malicious coordinator against real participant daemons over mutual TLS (test/support/
 * malicious-coordinator.ts): the harness itself, the proof that its subtraction check has power, and the
 * attack whose defence every site already has (a weak threshold). The attacks that need the sites'
 * defences against replays, off-chain models and forged commits are in
 * malicious-coordinator-defences.test.ts.
 *
 * The subtraction attack (DESIGN.md "What a site checks for itself"): two aggregates whose survivor sets
 * differ by one site give that site's contribution away. The controls below run it against sites that
 * cannot see the attack - daemons restarted on a backup of their state directory taken before the first
 * round - and show the harness recovers the left-out site's update (or its weight and metrics) from real
 * aggregates. A correct site that keeps its state refuses the same attack (the defences file).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAttack, SiteEvaluator, type Attack } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import { createTestPki, type TestPki } from '../support/pki.js';
import type { RecordedRefusal } from '../support/malicious-coordinator.js';
import { cachedFederation, simulateRound, testRoundConfig, testUpdate } from '../support/secagg-sim.js';
import { recoveredSites, updateContribution, type ObtainedAggregate, type SiteContribution } from '../support/subtraction.js';
import { roundScale } from '../../crypto/secagg/config.js';
import { decodeRoundConfig, encodeRoundConfig } from '../../crypto/secagg/config-codec.js';

/** A RoundConfig encoding with its reconstructionThreshold field (the 10th length-prefixed field) replaced. */
function withThreshold(encoded: Uint8Array, threshold: number): Uint8Array {
  const bytes = Uint8Array.from(encoded);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (let field = 0; field < 9; field++) offset += 4 + view.getUint32(offset, false);
  expect(view.getUint32(offset, false)).toBe(4);
  view.setUint32(offset + 4, threshold, false);
  return bytes;
}

const TASK = digitsTask({ kind: 'mlp', hidden: [16] });
const FEDERATION = 'malicious-coordinator-test';
const SITES = ['site-1', 'site-2', 'site-3', 'site-4'];
/** The site a subtraction attack leaves out of the second aggregate. */
const TARGET = 'site-4';
const OTHERS = ['site-1', 'site-2', 'site-3'];

let pki: TestPki;
let evaluator: SiteEvaluator;
let attack: Attack | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  evaluator = await SiteEvaluator.create(TASK);
});

afterEach(async () => {
  await attack?.close();
  attack = undefined;
});

afterAll(async () => {
  await evaluator.close();
});

async function open(): Promise<Attack> {
  attack = await openAttack({ pki, task: TASK, federationId: FEDERATION, siteIds: SITES });
  return attack;
}

async function recoveries(opened: Attack): Promise<ReturnType<typeof recoveredSites>> {
  return recoveredSites(opened.coordinator.aggregates, await opened.sites.contributions(opened.coordinator, evaluator));
}

/** [site, reason] of each refusal, sorted. */
function reasons(refusals: readonly RecordedRefusal[]): [string, string][] {
  return refusals.map((refusal): [string, string] => [refusal.siteId, refusal.reason]).sort(([a], [b]) => a.localeCompare(b));
}

describe('the malicious-coordinator harness', () => {
  it('runs a complete honest SecAgg+ round over mutual TLS against real daemons: the aggregate is the sum of the updates, every site signs and keeps model r+1', async () => {
    const { coordinator, sites } = await open();
    const round = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES }));
    expect(round.start()).toEqual(SITES);
    const end = await round.aggregate();
    if (end.status !== 'aggregated') throw new Error(`the honest round aborted: ${end.reason} ${end.message}`);

    // The aggregate is sum(w * delta), sum(w) and the metric sums of the four sites, within one quantum a site.
    const truths = await sites.contributions(coordinator, evaluator);
    const d = coordinator.plan.initialParameters.length;
    const expected = new Float64Array(d + 4);
    for (const truth of truths) {
      truth.weightedDelta?.forEach((value, i) => (expected[i] = (expected[i] as number) + value));
      if (truth.weight !== undefined) expected[d] = (expected[d] as number) + truth.weight;
      if (truth.metrics !== undefined) {
        expected[d + 1] = (expected[d + 1] as number) + truth.metrics.evalLossSum;
        expected[d + 2] = (expected[d + 2] as number) + truth.metrics.evalCorrect;
        expected[d + 3] = (expected[d + 3] as number) + truth.metrics.evalExamples;
      }
    }
    const quantum = 1 / roundScale(round.config);
    let worst = 0;
    for (let i = 0; i <= d; i++) worst = Math.max(worst, Math.abs((end.result.values[i] as number) - (expected[i] as number)));
    expect(worst).toBeLessThanOrEqual(SITES.length * quantum * 1.0001);
    expect(Math.abs(end.result.evalLossSum - (expected[d + 1] as number))).toBeLessThanOrEqual(SITES.length * 50 * 1000 * quantum);
    expect([end.result.evalCorrect, end.result.evalExamples]).toEqual([expected[d + 2], expected[d + 3]]);
    // One aggregate of four sites gives no single site away.
    expect(await recoveries(attack as Attack)).toEqual([]);

    const commit = await round.commit(end.result);
    expect(commit.status.signers).toEqual(SITES);
    round.announceCommitted({ sequence: 1, newModelHash: commit.hashes.newModelHash }, commit.record);
    const kept = (): boolean => SITES.every((siteId) => Buffer.from(sites.site(siteId).daemon?.latestModel() ?? []).equals(Buffer.from(commit.newModel)));
    await expect.poll(kept, { timeout: 10_000, interval: 50 }).toBe(true);
    expect(coordinator.refusals).toEqual([]);
  });

  it('the harness recovers a site\'s update from an undefended site (control): RoundStart replayed, same id, to sites restored from a backup taken before the round', async () => {
    const { coordinator, sites } = await open();
    const first = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES }), { label: 'round 1' });
    first.start();
    expect((await first.aggregate()).status).toBe('aggregated');
    first.abort();
    // A site restored from a backup older than round 1 has forgotten it: no counter, no contribution. It
    // keeps its site secret, so it trains exactly as before; the attack is invisible to it.
    await Promise.all(OTHERS.map((siteId) => sites.restart(siteId, 'rollback')));
    const replay = coordinator.round(first.config, { label: 'round 1 replayed' });
    expect(replay.start(OTHERS)).toEqual(OTHERS);
    expect((await replay.aggregate()).status).toBe('aggregated');

    const recovered = await recoveries(attack as Attack);
    expect(recovered.map((recovery) => [recovery.siteId, recovery.part, recovery.from])).toEqual(
      expect.arrayContaining([
        [TARGET, 'update', 'round 1 - round 1 replayed'],
        [TARGET, 'weight', 'round 1 - round 1 replayed'],
        [TARGET, 'metrics', 'round 1 - round 1 replayed'],
      ]),
    );
    expect(new Set(recovered.map((recovery) => recovery.siteId))).toEqual(new Set([TARGET]));
  });

  it('the harness recovers a site\'s weight and metrics from undefended sites (control): a second round on the same model without that site, against sites restored from a backup', async () => {
    const { coordinator, sites } = await open();
    const first = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES }), { label: 'round 1' });
    first.start();
    expect((await first.aggregate()).status).toBe('aggregated');
    first.abort();
    await Promise.all(OTHERS.map((siteId) => sites.restart(siteId, 'rollback')));
    const second = coordinator.round(coordinator.roundConfig({ counter: 2, participants: OTHERS }), { label: 'round 2' });
    second.start();
    expect((await second.aggregate()).status).toBe('aggregated');

    // Another round id trains on another shuffle, so the deltas differ; the weight (example count) and
    // the evaluation of the same model on the same test split do not.
    const recovered = await recoveries(attack as Attack);
    expect(recovered.map((recovery) => [recovery.siteId, recovery.part, recovery.from])).toEqual(
      expect.arrayContaining([
        [TARGET, 'weight', 'round 1 - round 2'],
        [TARGET, 'metrics', 'round 1 - round 2'],
      ]),
    );
    expect(new Set(recovered.map((recovery) => recovery.siteId))).toEqual(new Set([TARGET]));
  });

  it('the subtraction recovers a site\'s update from two SecAggServer aggregates whose U differ by that site (control without network or daemons)', () => {
    const federation = cachedFederation(4, 'control-');
    const all = federation.sites.map((site) => site.siteId);
    const target = all[3] as string;
    const first = testRoundConfig({ participants: all, degree: 3, threshold: 3, counter: 1, parameters: 64 });
    const second = testRoundConfig({ participants: all.slice(0, 3), degree: 2, threshold: 3, counter: 2, parameters: 64 });
    const aggregates: ObtainedAggregate[] = [first, second].map((config, index) => {
      const result = simulateRound({ federation, config, update: (siteId) => testUpdate(config, siteId) });
      if (result.aggregate === undefined) throw new Error(`simulated round ${index + 1} aborted: ${String(result.abort?.message)}`);
      return { label: `round ${index + 1}`, config, values: new Float64Array(result.aggregate.values), survivors: [...result.aggregate.maskedSurvivors] };
    });
    // testUpdate depends on the site alone: the same update in both rounds.
    const truths: SiteContribution[] = all.flatMap((siteId) => {
      const update = testUpdate(first, siteId);
      return [updateContribution(siteId, siteId, first, update.delta, update.weight), { siteId, source: siteId, metrics: update }];
    });
    expect(recoveredSites(aggregates.slice(0, 1), truths)).toEqual([]);
    expect(recoveredSites(aggregates.slice(1), truths)).toEqual([]);
    expect(recoveredSites(aggregates, truths).map((recovery) => [recovery.siteId, recovery.part, recovery.from])).toEqual([
      [target, 'update', 'round 1 - round 2'],
      [target, 'weight', 'round 1 - round 2'],
      [target, 'metrics', 'round 1 - round 2'],
    ]);
  });
});

describe('attacks every site already refuses', () => {
  it('a weak threshold is refused with its reason code by every site (THRESHOLD_WITHOUT_MARGIN, TOO_FEW_TOLERATED_COLLUDERS), and the subtraction recovers nothing', async () => {
    const { coordinator } = await open();
    // Three sites, t = 2: the coordinator and one colluding site could unmask the third.
    const noMargin = coordinator.round(coordinator.roundConfig({ counter: 1, participants: OTHERS, reconstructionThreshold: 2 }), { label: 'three sites, t = 2' });
    noMargin.start();
    expect(await noMargin.aggregate()).toMatchObject({ status: 'aborted' });
    // Five sites (one the coordinator made up), t = 3 < ceil(2 * 5 / 3): below the two-thirds majority.
    const belowTwoThirds = coordinator.round(coordinator.roundConfig({ counter: 2, participants: [...SITES, 'site-5'], reconstructionThreshold: 3 }), { label: 'five sites, t = 3' });
    belowTwoThirds.start();
    expect(await belowTwoThirds.aggregate()).toMatchObject({ status: 'aborted' });
    // An honest round afterwards: the only aggregate, on all four sites.
    const honest = coordinator.round(coordinator.roundConfig({ counter: 3, participants: SITES }), { label: 'round 3' });
    honest.start();
    expect((await honest.aggregate()).status).toBe('aggregated');

    expect({
      noMargin: reasons(coordinator.refusalsOf(noMargin.roundId)),
      belowTwoThirds: reasons(coordinator.refusalsOf(belowTwoThirds.roundId)),
      honest: reasons(coordinator.refusalsOf(honest.roundId)),
      recovered: await recoveries(attack as Attack),
    }).toEqual({
      noMargin: OTHERS.map((siteId) => [siteId, 'TOO_FEW_TOLERATED_COLLUDERS']),
      belowTwoThirds: SITES.map((siteId) => [siteId, 'THRESHOLD_WITHOUT_MARGIN']),
      honest: [],
      recovered: [],
    });
  });

  it('a threshold without a majority (t <= (k+1)/2, which no honest encoder writes) is refused by id with THRESHOLD_TOO_LOW, not left to time out', async () => {
    const { coordinator } = await open();
    // Four sites on the complete graph (k = 3) with t = 2: two of a neighbourhood could reconstruct.
    const config = coordinator.roundConfig({ counter: 1, participants: SITES });
    const bytes = withThreshold(encodeRoundConfig(config), 2);
    expect(() => decodeRoundConfig(bytes)).toThrow(expect.objectContaining({ reason: 'THRESHOLD_TOO_LOW' }));
    expect(coordinator.sendRoundStart(SITES, bytes, config.roundId)).toEqual(SITES);
    const refusals = await coordinator.waitForRefusals(config.roundId, SITES, 10_000);
    expect(reasons(refusals)).toEqual(SITES.map((siteId) => [siteId, 'THRESHOLD_TOO_LOW']));
    // Nothing was accepted: the same counter in an honest round is fresh and aggregates.
    const honest = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES }), { label: 'round 1, honest' });
    honest.start();
    expect((await honest.aggregate()).status).toBe('aggregated');
  });
});
