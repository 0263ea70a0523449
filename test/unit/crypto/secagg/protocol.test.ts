/**
 * Whole rounds through the pure state machines: dropouts at every stage, with the complete graph
 * (classic SecAgg) and a k = 8 SecAgg+ graph. Every completed round must give exactly the wrapped sum of
 * the survivors' quantized vectors; every impossible one must abort with a typed error and no output.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import type { ClientStage } from '../../../../crypto/secagg/messages.js';
import type { SecAggServer } from '../../../../crypto/secagg/server.js';
import {
  cachedFederation,
  expectedSum,
  simulateRound,
  testRoundConfig,
  testUpdate,
  type DropPoint,
  type SimulationResult,
  type TestFederation,
} from '../../../support/secagg-sim.js';

let federation: TestFederation;
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(20);
}, 300_000);

function drops(entries: readonly (readonly [string, DropPoint])[]): Map<string, DropPoint> {
  return new Map(entries);
}

function expectExactAggregate(result: SimulationResult): void {
  expect(result.abort).toBeUndefined();
  expect(result.refusals.size).toBe(0);
  expect(result.rejections).toEqual([]);
  expect(result.aggregate).toBeDefined();
  expect(result.aggregate?.sum).toEqual(expectedSum(result));
  expect(result.aggregate?.inconsistentShares).toEqual([]);
}

function expectAbort(result: SimulationResult, reason: string): void {
  expect(result.outcome).toBe('aborted');
  expect(result.abort).toMatchObject({ name: 'SecAggError', code: 'ABORTED', reason });
  expect(result.aggregate).toBeUndefined();
  expect(result.server.phase).toBe('aborted');
  expect(() => result.server.closeUnmask()).toThrow(expect.objectContaining({ code: 'ABORTED' }));
}

/** Drops `count` neighbours of the first member of U1 at `stage`, once the graph exists. */
function dropNeighbours(count: number, stage: ClientStage): (siteId: string, at: ClientStage, server: SecAggServer) => boolean {
  let victims: Set<string> | undefined;
  return (siteId, at, server) => {
    const graph: NeighbourGraph | undefined = server.neighbourGraph;
    if (at !== stage || graph === undefined) return false;
    victims ??= new Set(graph.neighbours(graph.siteIds[0] as string).slice(0, count));
    return victims.has(siteId);
  };
}

const graphs = [
  // With the complete graph a holder shortfall is a survivor shortfall: U3 itself drops below t.
  { name: 'SecAgg+ graph, k = 8', degree: 8, threshold: 6, holderSlack: 3, shortfall: 'INSUFFICIENT_SHARE_HOLDERS' },
  { name: 'complete graph, k = 19', degree: 19, threshold: 14, holderSlack: 6, shortfall: 'TOO_FEW_SURVIVORS' },
] as const;

describe.each(graphs)('n = 20, $name', ({ degree, threshold, holderSlack, shortfall }) => {
  const ids = () => federation.sites.map((site) => site.siteId);
  const config = () => testRoundConfig({ participants: ids(), degree });

  it('uses t = ceil(2(k+1)/3) by default', () => {
    expect(config().reconstructionThreshold).toBe(threshold);
  });

  it('without dropouts gives the exact wrapped sum, and the dequantized sums within rounding error', () => {
    const roundConfig = config();
    const result = simulateRound({ federation, config: roundConfig });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toEqual(ids());
    const aggregate = result.aggregate!;
    const d = 1000;
    // Each of the 20 stochastic roundings moves a slot by less than bound / M.
    const tolerance = (20 * 1) / Math.floor((2 ** 31 - 1) / 20);
    for (const i of [0, 1, 500, 999]) {
      let plain = 0;
      for (const siteId of ids()) {
        const update = testUpdate(roundConfig, siteId);
        plain += Math.max(-1, Math.min(1, update.weight * (update.delta[i] as number)));
      }
      expect(Math.abs((aggregate.weightedDeltaSum[i] as number) - plain)).toBeLessThanOrEqual(tolerance);
    }
    const weights = ids().reduce((sum, siteId) => sum + testUpdate(roundConfig, siteId).weight, 0);
    expect(Math.abs(aggregate.weightSum - weights)).toBeLessThanOrEqual(tolerance);
    expect(aggregate.evalExamples).toBe(ids().reduce((sum, siteId) => sum + testUpdate(roundConfig, siteId).evalExamples, 0));
    expect(aggregate.evalCorrect).toBe(ids().reduce((sum, siteId) => sum + testUpdate(roundConfig, siteId).evalCorrect, 0));
    expect(aggregate.values).toHaveLength(d + 4);
  });

  it('survives dropouts before AdvertiseKeys (they are not in U1)', () => {
    const result = simulateRound({ federation, config: config(), drops: drops([['site-02', 'advertise_keys'], ['site-11', 'advertise_keys'], ['site-17', 'advertise_keys']]) });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toHaveLength(17);
    expect(result.aggregate?.maskedSurvivors).not.toContain('site-11');
  });

  it('aborts with NONCE_WITHHELD when a site is lost between its advert and its nonce reveal', () => {
    const result = simulateRound({ federation, config: config(), drops: drops([['site-05', 'nonce_reveal']]) });
    expectAbort(result, 'NONCE_WITHHELD');
    expect(result.abort?.message).toContain('site-05');
    expect(result.reveals.size).toBe(0);
    // Nobody dealt a share: the graph was never derived.
    expect([...result.sent.values()].flat().some((message) => message.stage === 'share_keys')).toBe(false);
  });

  it('survives dropouts after the nonce reveal (in U1, not in U2)', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(2, 'share_keys') });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toHaveLength(18);
  });

  it('survives dropouts after ShareKeys (their pairwise masks are removed via s_sk)', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(holderSlack, 'masked_input') });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toHaveLength(20 - holderSlack);
    const revealedKinds = [...result.reveals.values()].flatMap((response) => response.shares.map((share) => share.secret));
    expect(revealedKinds).toContain('mask_key');
  });

  it('survives dropouts after MaskedInput (their inputs count, their b is reconstructed)', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(holderSlack, 'consistency_check') });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toHaveLength(20);
  });

  it('survives dropouts during Unmask while t holders of every secret answer', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(holderSlack, 'unmask') });
    expectExactAggregate(result);
  });

  it('aborts before Unmask - and no site reveals anything - when a secret is left without t live holders', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(holderSlack + 1, 'masked_input') });
    expectAbort(result, shortfall);
    expect(result.reveals.size).toBe(0);
    expect([...result.sent.values()].flat().some((message) => message.stage === 'unmask' || message.stage === 'consistency_check')).toBe(false);
  });

  it('aborts at Unmask with no aggregate when too many holders go silent during Unmask', () => {
    const result = simulateRound({ federation, config: config(), drop: dropNeighbours(holderSlack + 1, 'unmask') });
    expectAbort(result, 'INSUFFICIENT_SHARE_HOLDERS');
  });
});

describe('five sites, complete graph, t = 3', () => {
  it('completes with one site lost after ShareKeys and another after MaskedInput', () => {
    const five = cachedFederation(5, 'five-');
    const config = testRoundConfig({ participants: five.sites.map((site) => site.siteId), degree: 4, threshold: 3 });
    const result = simulateRound({ federation: five, config, drops: drops([['five-01', 'masked_input'], ['five-03', 'consistency_check']]), commit: true });
    expectExactAggregate(result);
    expect(result.aggregate?.maskedSurvivors).toEqual(['five-00', 'five-02', 'five-03', 'five-04']);
    expect(result.commitStatus).toMatchObject({ committed: true, signers: ['five-00', 'five-02', 'five-04'], rejected: [] });
    const record = result.server.commitRecord();
    expect(record.maskedSurvivors).toEqual(['five-00', 'five-02', 'five-03', 'five-04']);
    expect(record.signatures.map((entry) => entry.siteId)).toEqual(['five-00', 'five-02', 'five-04']);
  });
});
