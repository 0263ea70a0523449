/**
 * Public API of crypto/dp/: the pure mathematics of differential privacy - the RDP accountant, exact noise
 * samplers, and the distributed-DP encoding over secure aggregation. No I/O; randomness comes from
 * node:crypto (or a seeded RandomSource in tests).
 */
export {
  assertSameOrders,
  composeCurves,
  composeSteps,
  curveOnOrders,
  DEFAULT_ORDERS,
  dpSgdEpsilon,
  gaussianRdp,
  INTEGER_ORDERS,
  rdpToEpsilon,
  subsampledGaussianRdp,
  type Conversion,
  type EpsilonResult,
  type RdpCurve,
} from './rdp.js';
export { dpSgdRoundRdp, dpSgdRoundsEpsilon, type DpSgdRoundParams } from './dp-sgd-round.js';
export { maxSteps, sigmaForEpsilon, type Budget } from './rdp-inverse.js';
export { RandomWords } from './random-words.js';
export { bernoulliExpMinus, discreteGaussian, DiscreteGaussianSampler, discreteLaplace, type Rational } from './discrete-gaussian.js';
export { addSnappedGaussianNoise, DEFAULT_GRID_EXPONENT, snappedDpSgdStepRdp, snappedSensitivity, snappedVariance, type SnappedGaussianOptions } from './snapped-gaussian.js';
export { paddedDimension, rotate, rotationSigns, unrotate } from './hadamard.js';
export { MAX_SKELLAM_MEAN, distributedSkellamRdp, fillSkellam, poisson, skellam, skellamRdp } from './skellam.js';
export {
  bitsForWrapProbability,
  compileDistributedDp,
  decodeDistributedDp,
  distributedDpRdp,
  distributedSensitivity,
  encodeDistributedDp,
  integerContribution,
  toRing,
  wrapProbabilityBound,
  type CompiledDistributedDp,
  type DistributedDpParams,
} from './distributed-dp.js';
