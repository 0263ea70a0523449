/**
 * Whole SecAgg rounds with participant-level distributed DP, through the pure state machines
 * (test/support/secagg-sim.ts): the sites encode with the distributed discrete Gaussian, the coordinator
 * unmasks and decodes; with a dropout the decoded mean over survivors is the true mean of their clipped
 * updates within the noise. A coordinator that shows some sites other DP parameters loses those sites
 * (each refuses by reason code, or is shut out by the H(RoundConfig) cross-check) and never mixes
 * encodings in one sum.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../../crypto/bytes.js';
import { createRoundConfig, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { compileRoundDp } from '../../../../crypto/secagg/distributed-dp-round.js';
import type { RoundDistributedDp } from '../../../../crypto/secagg/dp-fields.js';
import { TEST_DP_REQUIREMENT, dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { TEST_TASK_HASH, cachedFederation, expectedSum, simulateRound, testPolicy, testUpdate, type TestFederation } from '../../../support/secagg-sim.js';
import { Z_1E9 } from '../../../support/statistics.js';

let federation: TestFederation;
beforeAll(() => {
  federation = cachedFederation(10);
}, 300_000);

const ids = (): string[] => federation.sites.map((site) => site.siteId);
const d = 1000;
const config = (): RoundConfig => dpRoundConfig({ participants: ids(), degree: 9, parameters: d });
const checkingPolicy = () => testPolicy({ participantLevelDp: new Map([[toHex(TEST_TASK_HASH), TEST_DP_REQUIREMENT]]) });

function clippedDelta(roundConfig: RoundConfig, siteId: string): Float64Array {
  const delta = Float64Array.from(testUpdate(roundConfig, siteId).delta);
  const norm = Math.hypot(...delta);
  return norm > TEST_DP_REQUIREMENT.clipNorm ? delta.map((v) => (v * TEST_DP_REQUIREMENT.clipNorm) / norm) : delta;
}

describe('a SecAgg round with distributed DP', () => {
  it('with a dropout after ShareKeys: the exact sum of the survivors, decoded to their mean within the noise', () => {
    const roundConfig = config();
    const result = simulateRound({ federation, config: roundConfig, policy: checkingPolicy, drops: new Map([['site-04', 'masked_input']]) });
    expect(result.abort).toBeUndefined();
    expect(result.refusals.size).toBe(0);
    const aggregate = result.aggregate!;
    expect(aggregate.maskedSurvivors).toHaveLength(9);
    expect(aggregate.maskedSurvivors).not.toContain('site-04');
    // Masks cancel exactly: the unmasked words are the survivors' DP encodings summed mod 2^32.
    expect(aggregate.sum).toEqual(expectedSum(result));
    expect(aggregate.sum).toHaveLength(1024 + 4);
    // Every survivor's w is 1: the average is over survivors.
    expect(Math.abs(aggregate.weightSum - 9)).toBeLessThan(1e-6);
    expect(aggregate.weightedDeltaSum).toHaveLength(d);

    const survivors = aggregate.maskedSurvivors;
    const inputs = survivors.map((siteId) => clippedDelta(roundConfig, siteId));
    const compiled = compileRoundDp(roundConfig);
    // The sum carries |U3| noise shares: std sqrt(|U3| s^2) / gamma per coordinate; the mean 1/|U3| of that.
    const meanStd = Math.sqrt(survivors.length * Number(compiled.perSiteVariance)) / compiled.scale / survivors.length;
    expect(meanStd).toBeGreaterThan(0.05); // the noise is real: sigma c = 0.5 on the sum
    let squared = 0;
    let largest = 0;
    for (let i = 0; i < d; i++) {
      const truth = inputs.reduce((total, input) => total + input[i]!, 0) / survivors.length;
      const error = aggregate.weightedDeltaSum[i]! / aggregate.weightSum - truth;
      squared += error * error;
      largest = Math.max(largest, Math.abs(error));
    }
    const rms = Math.sqrt(squared / d);
    // Within the noise, and with the noise's own size (not a bigger error, not a noiseless sum).
    expect(rms / meanStd).toBeGreaterThan(1 - Z_1E9 * Math.sqrt(1 / (2 * d)) - 0.01);
    expect(rms / meanStd).toBeLessThan(1 + Z_1E9 * Math.sqrt(1 / (2 * d)) + 0.01);
    expect(largest).toBeLessThan(Z_1E9 * meanStd);
  }, 120_000);

  it('a site shown a smaller noise multiplier than its task asks refuses with DP_PARAMETERS_MISMATCH; the round goes on without it', () => {
    const roundConfig = config();
    const weaker = createRoundConfig({ ...roundConfig, distributedDp: { ...(roundConfig.distributedDp as RoundDistributedDp), noiseMultiplier: 0.1 } });
    const result = simulateRound({
      federation,
      config: roundConfig,
      policy: checkingPolicy,
      inbox: { roundConfig: (siteId, honest) => (siteId === 'site-03' ? weaker : honest) },
    });
    expect(result.refusals.get('site-03')?.reason).toBe('DP_PARAMETERS_MISMATCH');
    expect(result.aggregate?.maskedSurvivors).not.toContain('site-03');
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  }, 120_000);

  it('a site shown another rotation seed, or no DP at all, refuses with its reason code', () => {
    const roundConfig = config();
    const otherSeed = createRoundConfig({ ...roundConfig, distributedDp: { ...(roundConfig.distributedDp as RoundDistributedDp), rotationSeed: new Uint8Array(32).fill(7) } });
    const noDp = createRoundConfig({ ...roundConfig, distributedDp: undefined as never });
    const result = simulateRound({
      federation,
      config: roundConfig,
      policy: checkingPolicy,
      inbox: { roundConfig: (siteId, honest) => (siteId === 'site-02' ? otherSeed : siteId === 'site-07' ? noDp : honest) },
    });
    expect(result.refusals.get('site-02')?.reason).toBe('DP_ROTATION_SEED_MISMATCH');
    expect(result.refusals.get('site-07')?.reason).toBe('DP_REQUIRED');
    expect(result.aggregate?.maskedSurvivors).toHaveLength(8);
  }, 120_000);

  it('a config without DP sent to only some sites never joins their vectors to the DP sum (H(RoundConfig) is cross-checked)', () => {
    const roundConfig = config();
    const noDp = createRoundConfig({ ...roundConfig, distributedDp: undefined as never });
    // These sites do not check DP themselves (their policy carries no task map): the signed config hash still shuts them out.
    const result = simulateRound({ federation, config: roundConfig, inbox: { roundConfig: (siteId, honest) => (siteId === 'site-05' || siteId === 'site-06' ? noDp : honest) } });
    const survivors = result.aggregate?.maskedSurvivors ?? [];
    expect(survivors).not.toContain('site-05');
    expect(survivors).not.toContain('site-06');
    const shutOut = [...result.rejections.map((rejection) => rejection.siteId), ...result.refusals.keys()];
    expect(shutOut).toEqual(expect.arrayContaining(['site-05', 'site-06']));
    if (result.aggregate !== undefined) expect(result.aggregate.sum).toEqual(expectedSum(result));
  }, 120_000);
});
