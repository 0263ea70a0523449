/**
 * RoundConfig.distributedDp: what the coordinator derives (scale, rotation seed), its canonical encoding
 * under H(RoundConfig), the structural rules, and the site's check against its task - each way a lying
 * coordinator could bend the round (less noise, another ring, another rotation, another scale, no DP at
 * all, DP on a task without it) is refused with its own reason code before any key is made.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../crypto/bytes.js';
import { wrapProbabilityBound } from '../../../../crypto/dp/distributed-dp.js';
import { createRoundConfig, parameterCount, updateWordCount, vectorLength, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { decodeRoundConfig, encodeRoundConfig, roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import {
  DP_WRAP_TARGET,
  checkRoundDistributedDp,
  compileRoundDp,
  distributedDpReport,
  dpRotationSeed,
  dpScale,
  participantLevelRoundCurve,
} from '../../../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement, RoundDistributedDp } from '../../../../crypto/secagg/dp-fields.js';
import { composeCurves, rdpToEpsilon } from '../../../../crypto/dp/rdp.js';
import { checkRoundConfigAgainstPolicy } from '../../../../crypto/secagg/policy.js';
import { TEST_DP_REQUIREMENT, dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { TEST_TASK_HASH, siteIds, testPolicy, testRoundConfig } from '../../../support/secagg-sim.js';
import { secaggRefusal } from '../../../support/secagg-refusal.js';

const ids = siteIds(10);
const honest = (): RoundConfig => dpRoundConfig({ participants: ids, degree: 9, parameters: 1000 });
const lying = (config: RoundConfig, change: Partial<RoundDistributedDp>): RoundConfig => createRoundConfig({ ...config, distributedDp: { ...(config.distributedDp as RoundDistributedDp), ...change } });
const dpPolicy = (requirement: DistributedDpRequirement | null = TEST_DP_REQUIREMENT) =>
  testPolicy({ participantLevelDp: new Map(requirement === null ? [] : [[toHex(TEST_TASK_HASH), requirement]]) });

function reasonOf(action: () => void): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { reason?: string }).reason;
  }
  return undefined;
}

describe('RoundConfig.distributedDp', () => {
  it('derives the rotation seed from the round id and the largest power-of-two scale within the wrap target', () => {
    const config = dpRoundConfig({ participants: ids, degree: 9, parameters: 1000 }, { ...TEST_DP_REQUIREMENT, ringBits: 20 });
    const dp = config.distributedDp!;
    expect(dp.rotationSeed).toEqual(dpRotationSeed(config.federationId, config.roundId));
    expect(dpRotationSeed(config.federationId, testRoundConfig({ participants: ids, degree: 9, counter: 2 }).roundId)).not.toEqual(dp.rotationSeed);
    expect(Math.log2(dp.scale) % 1).toBe(0);
    const compiled = compileRoundDp(config);
    expect(wrapProbabilityBound(compiled, ids.length)).toBeLessThanOrEqual(DP_WRAP_TARGET);
    const doubled = compileRoundDp(lying(config, { scale: dp.scale * 2 }));
    expect(wrapProbabilityBound(doubled, ids.length)).toBeGreaterThan(DP_WRAP_TARGET);
    // The noise: t - colluders honest shares carry at least (gamma sigma c)^2.
    expect(compiled.honestShares).toBe(config.reconstructionThreshold - 1);
    expect(Number(compiled.perSiteVariance) * compiled.honestShares).toBeGreaterThanOrEqual((dp.scale * 0.5) ** 2);
  });

  it('uploads D = d padded to a power of two words plus the four tail slots', () => {
    const config = honest();
    expect(parameterCount(config)).toBe(1000);
    expect(updateWordCount(config)).toBe(1024);
    expect(vectorLength(config)).toBe(1028);
  });

  it('reports bits per coordinate and the wrap bound', () => {
    const report = distributedDpReport(dpRoundConfig({ participants: ids, degree: 9 }, { ...TEST_DP_REQUIREMENT, ringBits: 16 }));
    expect(report).toMatchObject({ mechanism: 'discrete_gaussian', ringBits: 16, bitsPerCoordinate: 16, paddedDimension: 1024, noiseStd: 0.5, clipNorm: 1, toleratedColluders: 1 });
    expect(report.wrapProbabilityBound).toBeLessThanOrEqual(DP_WRAP_TARGET);
    expect(report.wrapProbabilityBound).toBeGreaterThan(0);
  });

  it('refuses a ring too small for the round', () => {
    expect(reasonOf(() => dpRoundConfig({ participants: ids, degree: 9 }, { ...TEST_DP_REQUIREMENT, ringBits: 4 }))).toBe('DP_RING_TOO_SMALL');
    expect(() => dpScale({ ...TEST_DP_REQUIREMENT, ringBits: 4 }, { federationId: 'f', roundId: new Uint8Array(24), participants: 10, threshold: 7, dimension: 1000 })).toThrow(/privacy\.participantLevel\.ringBits/);
  });

  it('encodes canonically under H(RoundConfig): round trip, every field pinned, old configs keep their bytes', () => {
    const config = honest();
    const bytes = encodeRoundConfig(config);
    expect(decodeRoundConfig(bytes)).toEqual(config);
    const train = createRoundConfig({ ...config, purpose: 'train' });
    expect(decodeRoundConfig(encodeRoundConfig(train))).toEqual(train);
    const plain = testRoundConfig({ participants: ids, degree: 9 });
    const withoutDp = createRoundConfig({ ...config, distributedDp: undefined as never });
    expect(decodeRoundConfig(encodeRoundConfig(withoutDp)).distributedDp).toBeUndefined();
    expect(encodeRoundConfig(withoutDp)).toEqual(encodeRoundConfig({ ...plain, roundId: config.roundId }));
    const hash = toHex(roundConfigHash(config));
    const changes: Partial<RoundDistributedDp>[] = [{ clipNorm: 2 }, { noiseMultiplier: 0.25 }, { toleratedColluders: 2 }, { ringBits: 31 }, { scale: config.distributedDp!.scale / 2 }, { rotationSeed: new Uint8Array(32) }];
    for (const change of changes) expect(toHex(roundConfigHash(lying(config, change))), JSON.stringify(Object.keys(change))).not.toBe(hash);
  });

  it('refuses DP in a plaintext round, in an evaluation-only round, and colluders >= t', () => {
    const config = honest();
    expect(() => createRoundConfig({ ...config, plaintext: true })).toThrow(/distributedDp needs masks/);
    expect(() => createRoundConfig({ ...config, purpose: 'evaluate', layout: { ...config.layout, parameterSegments: [] } })).toThrow(/distributedDp must be absent in an evaluation-only round/);
    expect(() => lying(config, { toleratedColluders: config.reconstructionThreshold })).toThrow(/distributedDp\.toleratedColluders/);
    expect(() => lying(config, { rotationSeed: new Uint8Array(31) })).toThrow(/distributedDp\.rotationSeed/);
  });
});

describe('a site checks RoundConfig.distributedDp against its task (lying coordinator)', () => {
  it('accepts the honest config', () => {
    expect(() => checkRoundConfigAgainstPolicy(honest(), 'site-01', dpPolicy())).not.toThrow();
    expect(() => checkRoundDistributedDp(honest(), TEST_DP_REQUIREMENT)).not.toThrow();
  });

  const attacks: [string, (config: RoundConfig) => RoundConfig, string][] = [
    ['smaller noise', (config) => lying(config, { noiseMultiplier: 0.25 }), 'DP_PARAMETERS_MISMATCH'],
    ['a larger clip norm', (config) => lying(config, { clipNorm: 4 }), 'DP_PARAMETERS_MISMATCH'],
    ['fewer tolerated colluders', (config) => lying(config, { toleratedColluders: 0 }), 'DP_PARAMETERS_MISMATCH'],
    ['other ring bits', (config) => lying(config, { ringBits: 16 }), 'DP_PARAMETERS_MISMATCH'],
    ['another rotation seed', (config) => lying(config, { rotationSeed: dpRotationSeed(config.federationId, new Uint8Array(24)) }), 'DP_ROTATION_SEED_MISMATCH'],
    ['a larger scale (the sum may wrap)', (config) => lying(config, { scale: config.distributedDp!.scale * 4 }), 'DP_SCALE_MISMATCH'],
    ['a smaller scale', (config) => lying(config, { scale: config.distributedDp!.scale / 2 }), 'DP_SCALE_MISMATCH'],
    ['no distributed DP at all', (config) => createRoundConfig({ ...config, distributedDp: undefined as never }), 'DP_REQUIRED'],
  ];
  it.each(attacks)('refuses %s', (_name, attack, reason) => {
    const config = attack(honest());
    expect(reasonOf(() => checkRoundConfigAgainstPolicy(config, 'site-01', dpPolicy()))).toBe(reason);
    expect(reasonOf(() => checkRoundDistributedDp(config, TEST_DP_REQUIREMENT))).toBe(reason);
  });

  it('refuses DP on a task that asks for none (sites of one round must encode alike)', () => {
    expect(reasonOf(() => checkRoundConfigAgainstPolicy(honest(), 'site-01', dpPolicy(null)))).toBe('DP_NOT_IN_TASK');
  });

  it('leaves the check to the caller when the policy carries no map (the daemon checks with its task document)', () => {
    expect(() => checkRoundConfigAgainstPolicy(honest(), 'site-01', testPolicy())).not.toThrow();
  });

  it('refuses a scale derived for another |U| (a config meant for a different participant set)', () => {
    const requirement = { ...TEST_DP_REQUIREMENT, ringBits: 20 };
    const config = dpRoundConfig({ participants: ids, degree: 9, parameters: 1000 }, requirement);
    const other = dpScale(requirement, { federationId: config.federationId, roundId: config.roundId, participants: 100, threshold: 67, dimension: 1000 });
    expect(other).not.toBe(config.distributedDp!.scale);
    expect(reasonOf(() => checkRoundDistributedDp(lying(config, { scale: other }), requirement))).toBe('DP_SCALE_MISMATCH');
  });

  it("caps the scale of a wide ring so that each site's noise variance stays an exact integer in doubles", () => {
    const config = dpRoundConfig({ participants: ids.slice(0, 4), degree: 3, parameters: 1000 });
    expect(Number(compileRoundDp(config).perSiteVariance)).toBeLessThanOrEqual(2 ** 50);
  });
});

describe('participant-level accounting', () => {
  it('spends the distributed discrete Gaussian curve per round; more survivors spend less; rounds compose by addition', () => {
    const config = honest();
    const worst = participantLevelRoundCurve(config, undefined, [2, 8, 32]);
    const all = participantLevelRoundCurve(config, ids.length, [2, 8, 32]);
    const atT = participantLevelRoundCurve(config, config.reconstructionThreshold, [2, 8, 32]);
    expect(atT.rdp).toEqual(worst.rdp);
    all.rdp.forEach((value, i) => expect(value).toBeLessThan(worst.rdp[i]!));
    // Sensitivity ~ c, noise sigma c: rho ~ 1 / (2 sigma^2) = 2 at sigma = 0.5.
    expect(worst.rdp[0]! / 2).toBeGreaterThan(1.9);
    expect(worst.rdp[0]! / 2).toBeLessThan(2.2);
    expect(() => participantLevelRoundCurve(config, config.reconstructionThreshold - 1)).toThrow(/survivors/);
  });

  it('composes across rounds: ten rounds spend ten times one round, and more than one round in epsilon', () => {
    const rounds = Array.from({ length: 10 }, (_, i) => participantLevelRoundCurve(dpRoundConfig({ participants: ids, degree: 9, parameters: 1000, counter: i + 1 })));
    const total = composeCurves(rounds);
    total.rdp.forEach((value, i) => expect(value).toBeCloseTo(rounds[0]!.rdp[i]! * 10, 9));
    const one = rdpToEpsilon(rounds[0]!, 1e-5).epsilon;
    const ten = rdpToEpsilon(total, 1e-5).epsilon;
    expect(ten).toBeGreaterThan(one * 2);
    expect(ten).toBeLessThan(one * 10);
  });
});

describe('the edges of the distributed-DP round checks', () => {
  const shape = { federationId: 'f', roundId: new Uint8Array(24), participants: 10, threshold: 7, dimension: 1000 };

  it('refuses DP in an evaluation-only round and asks none of it there, whatever the task says', () => {
    const config = honest();
    const evaluation = { ...config, purpose: 'evaluate', layout: { ...config.layout, parameterSegments: [] } } as RoundConfig;
    const error = secaggRefusal(() => checkRoundDistributedDp(evaluation, TEST_DP_REQUIREMENT, 'site-03'));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'DP_NOT_IN_TASK', stage: 'round_config', site: 'site-03' });
    const { distributedDp: _dp, ...withoutDp } = evaluation;
    expect(() => checkRoundDistributedDp(withoutDp as RoundConfig, TEST_DP_REQUIREMENT)).not.toThrow();
    expect(() => checkRoundDistributedDp(testRoundConfig({ participants: ids, degree: 9 }), undefined)).not.toThrow();
  });

  it('refuses another mechanism and names the site in every refusal', () => {
    const config = { ...honest(), distributedDp: { ...honest().distributedDp!, mechanism: 'skellam' } } as unknown as RoundConfig;
    const error = secaggRefusal(() => checkRoundDistributedDp(config, TEST_DP_REQUIREMENT, 'site-05'));
    expect(error).toMatchObject({ reason: 'DP_PARAMETERS_MISMATCH', stage: 'round_config', site: 'site-05' });
    expect(error.message).toContain('distributedDp.mechanism is skellam');
    expect(secaggRefusal(() => checkRoundDistributedDp(honest(), undefined)).site).toBeUndefined();
  });

  it('has no mechanism to compile without distributedDp', () => {
    expect(secaggRefusal(() => compileRoundDp(testRoundConfig({ participants: ids, degree: 9 }))).reason).toBe('INVALID_ARGUMENT');
  });

  it('derives no scale when colluders reach t or the ring cannot hold |U| contributions', () => {
    expect(secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, toleratedColluders: 7 }, shape)).reason).toBe('INVALID_ROUND_CONFIG');
    expect(() => dpScale({ ...TEST_DP_REQUIREMENT, toleratedColluders: 6 }, shape)).not.toThrow();
    // 2^(b-1) = 8 ring units cannot hold the sum of 10 contributions at any scale.
    expect(secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, ringBits: 4 }, shape)).reason).toBe('DP_RING_TOO_SMALL');
    expect(secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, ringBits: 4 }, { ...shape, participants: 8 })).reason).toBe('DP_RING_TOO_SMALL');
  });

  it('prefers the largest power of two within the wrap target: half of it is also within, double is not', () => {
    const requirement = { ...TEST_DP_REQUIREMENT, ringBits: 24 };
    const scale = dpScale(requirement, shape);
    const config = dpRoundConfig({ participants: ids, degree: 9, parameters: 1000 }, requirement);
    expect(config.distributedDp!.scale).toBe(dpScale(requirement, { ...shape, federationId: config.federationId, roundId: config.roundId, threshold: config.reconstructionThreshold }));
    expect(wrapProbabilityBound(compileRoundDp(lying(config, { scale: scale / 2 })), ids.length)).toBeLessThanOrEqual(DP_WRAP_TARGET);
    expect(wrapProbabilityBound(compileRoundDp(lying(config, { scale: scale * 2 })), ids.length)).toBeGreaterThan(DP_WRAP_TARGET);
  });

  it('takes survivors in [t, |U|] for the round curve', () => {
    const config = honest();
    expect(() => participantLevelRoundCurve(config, ids.length)).not.toThrow();
    for (const survivors of [ids.length + 1, 7.5, Number.NaN]) expect(() => participantLevelRoundCurve(config, survivors)).toThrow(/survivors must be an integer in \[t, \|U\|\]/);
  });
});

describe('the derivations, pinned', () => {
  it('seeds the rotation with SHA-256 of the length-prefixed label, federation id and round id (a vector computed independently)', () => {
    const roundId = Uint8Array.from({ length: 24 }, (_, index) => index);
    // Python: sha256(b''.join(struct.pack('>I', len(f)) + f for f in (b'fedgate/v1/dp-rotation', b'fed', bytes(range(24)))))
    expect(toHex(dpRotationSeed('fed', roundId))).toBe('edf21db695bc2a640f6ca6ab2e6f50750095a378be6150f802cd0bf66a136c42');
  });

  it('carries noise of noiseMultiplier x clipNorm per coordinate, for a clip norm other than 1', () => {
    const requirement = { ...TEST_DP_REQUIREMENT, clipNorm: 3, noiseMultiplier: 0.5, ringBits: 24 };
    const config = dpRoundConfig({ participants: ids, degree: 9, parameters: 1000 }, requirement);
    expect(distributedDpReport(config)).toMatchObject({ noiseStd: 1.5, clipNorm: 3 });
    const scale = config.distributedDp!.scale;
    expect(wrapProbabilityBound(compileRoundDp(config), ids.length)).toBeLessThanOrEqual(DP_WRAP_TARGET);
    expect(wrapProbabilityBound(compileRoundDp(lying(config, { scale: scale * 2 })), ids.length)).toBeGreaterThan(DP_WRAP_TARGET);
  });

  it('halves the closed-form scale until the exact wrap bound is met (three sites, a 5-bit ring, d = 10)', () => {
    const requirement = { ...TEST_DP_REQUIREMENT, ringBits: 5, noiseMultiplier: 0.1 };
    const shape = { federationId: 'f', roundId: new Uint8Array(24), participants: 3, threshold: 2, dimension: 10 };
    // The closed form (2^4 - 3) / sqrt(2 ln(2 D / target) ((n c)^2 / D + n sigma^2 / honest)) rounds down to 2; the exact bound needs 1/2.
    expect(dpScale(requirement, shape)).toBe(0.5);
  });

  it('refuses a ring whose margin is positive but too small at every scale, naming the stage', () => {
    const shape = { federationId: 'f', roundId: new Uint8Array(24), participants: 3, threshold: 2, dimension: 1000 };
    const error = secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, ringBits: 5 }, shape));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'DP_RING_TOO_SMALL', stage: 'round_config' });
    expect(error.message).toContain('a ring of 5 bits cannot hold the sum of 3 contributions (d = 1000, c = 1, noise 0.5)');
    // Four sites: the search starts at 2, so after 64 halvings the scale is still above 2^-64 and only the exact bound refuses it.
    expect(secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, ringBits: 5 }, { ...shape, participants: 4, threshold: 3, dimension: 100 })).reason).toBe('DP_RING_TOO_SMALL');
    const colluders = secaggRefusal(() => dpScale({ ...TEST_DP_REQUIREMENT, toleratedColluders: 2 }, shape));
    expect(colluders).toMatchObject({ reason: 'INVALID_ROUND_CONFIG', stage: 'round_config' });
    expect(colluders.message).toContain('toleratedColluders 2 must be below t = 2');
  });

  it("takes the largest scale that keeps each site's noise variance within 2^50 on a wide ring", () => {
    for (const clipNorm of [1, 3]) {
      const config = dpRoundConfig({ participants: ids.slice(0, 4), degree: 3, parameters: 1000 }, { ...TEST_DP_REQUIREMENT, clipNorm });
      expect(Number(compileRoundDp(config).perSiteVariance)).toBeLessThanOrEqual(2 ** 50);
      const doubled = compileRoundDp(lying(config, { scale: config.distributedDp!.scale * 2 }));
      expect(Number(doubled.perSiteVariance) > 2 ** 50 || wrapProbabilityBound(doubled, 4) > DP_WRAP_TARGET).toBe(true);
    }
  });

  it('says in each refusal what was wrong', () => {
    const config = honest();
    expect(() => compileRoundDp(testRoundConfig({ participants: ids, degree: 9 }))).toThrow('this round has no distributed DP (RoundConfig.distributedDp is absent)');
    const evaluation = { ...config, purpose: 'evaluate', layout: { ...config.layout, parameterSegments: [] } } as RoundConfig;
    expect(() => checkRoundDistributedDp(evaluation, TEST_DP_REQUIREMENT)).toThrow('RoundConfig.distributedDp is set in an evaluation-only round');
    expect(() => checkRoundDistributedDp(config, undefined)).toThrow("RoundConfig.distributedDp is set but this round's task asks for no participant-level DP");
    const { distributedDp: _dp, ...plain } = config;
    expect(() => checkRoundDistributedDp(plain as RoundConfig, TEST_DP_REQUIREMENT)).toThrow('RoundConfig.distributedDp is absent');
    const seed = new Uint8Array(32).fill(7);
    expect(() => checkRoundDistributedDp(lying(config, { rotationSeed: seed }), TEST_DP_REQUIREMENT)).toThrow(`RoundConfig.distributedDp.rotationSeed ${toHex(seed)} is not the one derived from the round id`);
    const scale = config.distributedDp!.scale;
    expect(() => checkRoundDistributedDp(lying(config, { scale: scale * 2 }), TEST_DP_REQUIREMENT)).toThrow(`RoundConfig.distributedDp.scale is ${scale * 2} but this round (|U| = 10, t = ${config.reconstructionThreshold}, d = 1000) derives ${scale}`);
    const survivors = secaggRefusal(() => participantLevelRoundCurve(config, 11));
    expect(survivors).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT' });
  });
});
