/**
 * Distributed DP through the round's own encoding and decoding (update-vector.ts quantizeUpdate,
 * aggregate-codec.ts dequantizeAggregate) with the scale and rotation a RoundConfig derives: the noise the
 * decoded sum carries has the target variance (and a sum with half the noise is caught), the mean over
 * survivors is unbiased, and the modular sum wraps no more often than the bound says. Seeded randomness,
 * thresholds at the 1e-9 level (test/support/statistics.ts).
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { integerContribution, toRing, wrapProbabilityBound } from '../../../../crypto/dp/distributed-dp.js';
import { RandomWords } from '../../../../crypto/dp/random-words.js';
import { sha256 } from '../../../../crypto/hash.js';
import { RandomSource } from '../../../../crypto/quantize.js';
import { dequantizeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import { createRoundConfig, vectorLength, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { compileRoundDp, distributedDpReport } from '../../../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement } from '../../../../crypto/secagg/dp-fields.js';
import { quantizeUpdate, type LocalUpdate } from '../../../../crypto/secagg/update-vector.js';
import { TEST_DP_REQUIREMENT, dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { siteIds, wrappedSum } from '../../../support/secagg-sim.js';
import { Z_1E9, meanAndVariance } from '../../../support/statistics.js';

const random = (label: string): RandomSource => RandomSource.seeded(sha256(utf8(`distributed-dp-aggregate/${label}`)));

function randomDelta(source: RandomSource, d: number, norm: number): Float64Array {
  const words = new Uint32Array(d);
  source.fill(words);
  const x = Float64Array.from(words, (w) => w / 2 ** 32 - 0.5);
  const factor = norm / Math.hypot(...x);
  return x.map((v) => v * factor);
}

const update = (delta: Float64Array): LocalUpdate => ({ delta, weight: 0.37, evalLossSum: 0, evalCorrect: 0, evalExamples: 0 });

function clipped(delta: Float64Array, clipNorm: number): Float64Array {
  const norm = Math.hypot(...delta);
  return norm > clipNorm ? delta.map((v) => (v * clipNorm) / norm) : delta;
}

/** Encodes each site's delta as the round does, sums the words mod 2^32 and decodes the aggregate. */
function aggregateOf(config: RoundConfig, deltas: readonly Float64Array[], source: RandomSource): { sum: Float64Array; weightSum: number } {
  const vectors = deltas.map((delta) => {
    const out = new Uint32Array(vectorLength(config));
    quantizeUpdate(config, update(delta), out, source);
    return out;
  });
  const values = dequantizeAggregate(config, wrappedSum(vectors, vectorLength(config)));
  return { sum: Float64Array.from(values.weightedDeltaSum), weightSum: values.weightSum };
}

/**
 * mean(r^2) / target over N residual coordinates: for Gaussian-like noise of variance `target` it is
 * 1 +- Z sqrt(2 / N); `slack` covers the upward rounding of the per-site variance and the rounding noise.
 */
function varianceMatches(residuals: readonly number[], target: number, slack: number): { ratio: number; ok: boolean } {
  const ratio = residuals.reduce((sum, r) => sum + r * r, 0) / residuals.length / target;
  return { ratio, ok: Math.abs(ratio - 1) <= Z_1E9 * Math.sqrt(2 / residuals.length) + slack };
}

describe('distributed DP through the round encoding', () => {
  const ids = siteIds(8);
  const d = 2048;
  const requirement: DistributedDpRequirement = { ...TEST_DP_REQUIREMENT, ringBits: 24 };

  /** Residuals of the decoded sum of `sites` contributions against the true sum of their clipped deltas. */
  function residuals(config: RoundConfig, sites: number, label: string): number[] {
    const source = random(label);
    const out: number[] = [];
    for (let round = 0; round < 8; round++) {
      const deltas = Array.from({ length: sites }, () => randomDelta(source, d, 3));
      const { sum, weightSum } = aggregateOf(config, deltas, source);
      expect(Math.abs(weightSum - sites)).toBeLessThan(1e-6); // every w is 1 under distributed DP
      const inputs = deltas.map((delta) => clipped(delta, 1));
      for (let i = 0; i < d; i++) out.push(sum[i]! - inputs.reduce((total, input) => total + input[i]!, 0));
    }
    return out;
  }

  it('the decoded sum of the t - colluders honest shares carries the target noise variance, and half the noise fails the same test', () => {
    const config = dpRoundConfig({ participants: ids, degree: 7, parameters: d }, requirement);
    const compiled = compileRoundDp(config);
    const honest = compiled.honestShares;
    expect(honest).toBe(config.reconstructionThreshold - 1);
    const target = (requirement.noiseMultiplier * requirement.clipNorm) ** 2;
    const gamma = compiled.scale;
    // Up to honest ring units^2 from the ceil of the per-site variance, and honest / 4 from rounding.
    const slack = (1.25 * honest) / (gamma * gamma * target);
    expect(slack).toBeLessThan(1e-3);
    const honestSum = varianceMatches(residuals(config, honest, 'variance'), target, slack);
    expect(honestSum.ok, `ratio ${honestSum.ratio}`).toBe(true);
    // A coordinator that talked sites into half the noise multiplier would leave a quarter of the variance.
    const halved = createRoundConfig({ ...config, distributedDp: { ...config.distributedDp!, noiseMultiplier: requirement.noiseMultiplier / 2 } });
    const weak = varianceMatches(residuals(halved, honest, 'variance-halved'), target, slack);
    expect(weak.ok).toBe(false);
    expect(weak.ratio).toBeLessThan(0.3);
    // Half the honest shares (half the variance) fails too.
    const fewShares = varianceMatches(residuals(config, Math.ceil(honest / 2), 'variance-few'), target, slack);
    expect(fewShares.ok).toBe(false);
  });

  it('the mean over survivors decoded from many rounds is the true mean of the clipped updates (unbiased)', () => {
    const small = siteIds(3);
    const dimension = 16;
    const coarse: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 0.5, toleratedColluders: 1, ringBits: 8 };
    const source = random('unbiased');
    const deltas = [randomDelta(source, dimension, 0.9), randomDelta(source, dimension, 1.6), randomDelta(source, dimension, 0.4)];
    const truth = Float64Array.from({ length: dimension }, (_, i) => deltas.reduce((total, delta) => total + clipped(delta, 1)[i]!, 0) / 3);
    const trials = 2000;
    const errors = Array.from({ length: dimension }, () => new Float64Array(trials));
    let scale = 0;
    for (let trial = 0; trial < trials; trial++) {
      // A new round id each time: a new rotation.
      const config = dpRoundConfig({ participants: small, degree: 2, parameters: dimension, counter: trial + 1 }, coarse);
      scale = config.distributedDp!.scale;
      const { sum, weightSum } = aggregateOf(config, deltas, source);
      for (let i = 0; i < dimension; i++) errors[i]![trial] = sum[i]! / weightSum - truth[i]!;
    }
    // The grid is coarse (gamma small), so a biased rounding would show.
    expect(scale).toBeLessThanOrEqual(16);
    for (let i = 0; i < dimension; i++) {
      const { mean, variance } = meanAndVariance(errors[i]!);
      expect(Math.abs(mean), `coordinate ${i}`).toBeLessThan(Z_1E9 * Math.sqrt(variance / trials));
    }
  });

  it('never wraps at the derived scale of a small ring, and wraps no more often than the bound at a scale where it is large', () => {
    const small = siteIds(4);
    const dimension = 64;
    const ring: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 1, toleratedColluders: 0, ringBits: 12 };
    const config = dpRoundConfig({ participants: small, degree: 3, parameters: dimension }, ring);
    const report = distributedDpReport(config);
    expect(report.bitsPerCoordinate).toBe(12);
    const words = new RandomWords(random('wrap'));
    const source = random('wrap-deltas');
    const trials = 400;
    const wrapsAt = (roundConfig: RoundConfig): number => {
      const compiled = compileRoundDp(roundConfig);
      const half = 2 ** (compiled.ringBits - 1);
      let wraps = 0;
      for (let trial = 0; trial < trials; trial++) {
        const contributions = small.map(() => integerContribution(compiled, randomDelta(source, dimension, 1.5), words));
        const exact = new Float64Array(compiled.paddedDimension);
        for (const c of contributions) for (let i = 0; i < exact.length; i++) exact[i]! += c[i]!;
        if (exact.some((v) => v < -half || v >= half)) {
          wraps++;
          continue;
        }
        // No wrap: reducing the uint32 sum mod 2^b gives back the exact integer sum.
        const sum = wrappedSum(contributions.map((c) => toRing(compiled, c)), exact.length);
        for (let i = 0; i < exact.length; i++) {
          const residue = sum[i]! % (2 * half);
          expect(residue >= half ? residue - 2 * half : residue).toBe(exact[i]);
        }
      }
      return wraps;
    };
    expect(wrapsAt(config)).toBe(0);
    // The smallest multiple of the scale at which the bound says wraps are likely enough to be seen.
    const scaled = (factor: number): RoundConfig => createRoundConfig({ ...config, distributedDp: { ...config.distributedDp!, scale: config.distributedDp!.scale * factor } });
    let factor = 2;
    while (wrapProbabilityBound(compileRoundDp(scaled(factor)), small.length) < 0.2) factor *= 2;
    const bold = scaled(factor);
    const bound = wrapProbabilityBound(compileRoundDp(bold), small.length);
    expect(bound).toBeLessThan(1);
    const wraps = wrapsAt(bold);
    expect(wraps).toBeGreaterThan(0); // the simulation does see wraps where the bound allows them
    expect(wraps / trials, `bound ${bound}`).toBeLessThanOrEqual(Math.min(1, bound + Z_1E9 * Math.sqrt((bound * (1 - Math.min(bound, 1))) / trials)));
  });
});
