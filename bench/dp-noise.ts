/**
 * The cost of fedgate's differential-privacy mathematics. Prints one JSON line:
 * - abadi_eps_classic / abadi_eps_balle: the accountant on Abadi et al. 2016's case (q = 0.01, sigma = 4,
 *   10,000 steps, delta = 1e-5), classic and Balle et al. 2020 conversions; accountant_ms: that curve;
 * - dg_per_s_small: exact discrete Gaussian draws per second at sigma^2 = 5/2 (Number path);
 * - dg_per_s_grid24: at sigma = 2^24 (DP-SGD's snapped noise at noise std 1, grid 2^-24: float-guarded path);
 * - dg_per_s_bigint: at sigma^2 = (10^14 + 1)/3 (the all-BigInt path);
 * - snapped_ms_lenet: addSnappedGaussianNoise over d = 61,706 (the NIID-Bench CNN) at noise std 1;
 * - ddp_encode_ms_lenet / ddp_decode_ms: one site's distributed-DP encoding of that update (c = 1,
 *   gamma = 2^10, target noise std 0.01 over t = 8 survivors, 2 colluders), and decoding the sum;
 * - ddp_bits_for_1e-9_wrap_n10: the fewest ring bits keeping the wrap bound <= 1e-9 for 10 sites, and
 *   ddp_wrap_bound_b32_n10 the bound in SecAgg's 32-bit ring.
 * Every rate is the best of 3 runs (the machine is shared). Usage: npx tsx bench/dp-noise.ts
 */
import { randomBytes } from 'node:crypto';
import {
  bitsForWrapProbability,
  compileDistributedDp,
  composeSteps,
  decodeDistributedDp,
  DiscreteGaussianSampler,
  encodeDistributedDp,
  addSnappedGaussianNoise,
  rdpToEpsilon,
  subsampledGaussianRdp,
  wrapProbabilityBound,
  type Rational,
} from '../crypto/dp/index.js';

function best(runs: number, task: () => void): number {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    task();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

function rate(variance: Rational, count = 300_000): number {
  const sampler = new DiscreteGaussianSampler(variance);
  const out = new Float64Array(count);
  return Math.round(count / (best(3, () => sampler.fill(out)) / 1000));
}

let curve = subsampledGaussianRdp(0.01, 4);
const accountantMs = best(3, () => {
  curve = composeSteps(subsampledGaussianRdp(0.01, 4), 10_000);
});
const lenet = 61_706;
const update = Float64Array.from({ length: lenet }, () => Math.random() - 0.5);
const params = { clipNorm: 1, dimension: lenet, scale: 2 ** 10, ringBits: 32, targetNoiseStd: 0.01, minSurvivors: 8, toleratedColluders: 2, rotationSeed: randomBytes(32) };
const compiled = compileDistributedDp(params);
let encoded: Uint32Array = new Uint32Array(0);
const encodeMs = best(3, () => {
  encoded = encodeDistributedDp(compiled, update);
});
const decodeMs = best(3, () => decodeDistributedDp(compiled, encoded));

console.log(
  JSON.stringify({
    abadi_eps_classic: Number(rdpToEpsilon(curve, 1e-5, 'classic').epsilon.toFixed(4)),
    abadi_eps_balle: Number(rdpToEpsilon(curve, 1e-5, 'balle2020').epsilon.toFixed(4)),
    accountant_ms: Number(accountantMs.toFixed(2)),
    dg_per_s_small: rate({ numerator: 5n, denominator: 2n }),
    dg_per_s_grid24: rate({ numerator: 1n << 48n, denominator: 1n }),
    dg_per_s_bigint: rate({ numerator: 10n ** 14n + 1n, denominator: 3n }),
    snapped_ms_lenet: Number(best(3, () => addSnappedGaussianNoise(new Float32Array(lenet), { noiseStd: 1 })).toFixed(1)),
    ddp_encode_ms_lenet: Number(encodeMs.toFixed(1)),
    ddp_decode_ms: Number(decodeMs.toFixed(1)),
    'ddp_bits_for_1e-9_wrap_n10': bitsForWrapProbability(params, 10, 1e-9) ?? null,
    ddp_wrap_bound_b32_n10: wrapProbabilityBound(compiled, 10),
  }),
);
