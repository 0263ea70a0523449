/**
 * RoundConfigs with participant-level distributed DP for tests: testRoundConfig plus the
 * RoundConfig.distributedDp an honest coordinator derives from the task's requirement.
 */
import { createRoundConfig, parameterCount, type RoundConfig } from '../../crypto/secagg/config.js';
import { roundDistributedDp } from '../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import { testRoundConfig, type TestConfigOptions } from './secagg-sim.js';

export const TEST_DP_REQUIREMENT: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 0.5, toleratedColluders: 1, ringBits: 32 };

/** `config` with the distributedDp an honest coordinator derives from `requirement`. */
export function withDistributedDp(config: RoundConfig, requirement: DistributedDpRequirement = TEST_DP_REQUIREMENT): RoundConfig {
  const distributedDp = roundDistributedDp(requirement, {
    federationId: config.federationId,
    roundId: config.roundId,
    participants: config.participants.length,
    threshold: config.reconstructionThreshold,
    dimension: parameterCount(config),
  });
  return createRoundConfig({ ...config, distributedDp });
}

export function dpRoundConfig(options: TestConfigOptions, requirement: DistributedDpRequirement = TEST_DP_REQUIREMENT): RoundConfig {
  return withDistributedDp(testRoundConfig(options), requirement);
}
