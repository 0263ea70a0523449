/**
 * The coordinator's choice of k and t (coordinator/federation/round-shape.ts) against what a site with
 * the default policy accepts (crypto/secagg/policy.ts): for every round size from 2 to 1000 the
 * automatic choice passes, except two sites, which no threshold can protect - there the coordinator
 * reports the site's refusal reason so it can warn, and the site indeed refuses.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { createRoundConfig, makeRoundId, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import { checkRoundConfigAgainstPolicy, type SitePolicy } from '../../../../crypto/secagg/policy.js';
import { roundShape, type RoundShape } from '../../../../coordinator/federation/round-shape.js';

const taskHash = sha256(utf8('round shape task'));
/** A site that keeps every site.yaml default (min_threshold 3, margin defaults). */
const defaultSite: SitePolicy = { pinnedTaskHashes: [taskHash], minParticipants: 2, minThreshold: 3 };
const ids = Array.from({ length: 1000 }, (_, index) => `site-${String(index).padStart(4, '0')}`);

function configOf(n: number, shape: RoundShape, plaintext = false): RoundConfig {
  return createRoundConfig({
    federationId: 'fed',
    roundId: makeRoundId(1n, new Uint8Array(16)),
    participants: ids.slice(0, n),
    taskHash,
    modelHash: sha256(utf8('model')),
    optimizerStateHash: sha256(utf8('optimiser')),
    neighbourDegree: shape.neighbourDegree,
    reconstructionThreshold: shape.reconstructionThreshold,
    layout: { parameterSegments: [{ length: 4, bound: 1 }], maxLossPerExample: 5, maxEvalExamples: 100 },
    maxWeight: 100,
    plaintext,
  });
}

function siteVerdict(config: RoundConfig, policy: SitePolicy = defaultSite): string {
  try {
    checkRoundConfigAgainstPolicy(config, ids[0] as string, policy);
    return 'accepted';
  } catch (error) {
    if (!(error instanceof SecAggError)) throw error;
    return error.reason;
  }
}

describe('the coordinator\'s automatic k and t', () => {
  it('pass the default site policy for every round of 3 to 1000 sites; two sites are flagged and refused', () => {
    for (let n = 2; n <= 1000; n++) {
      const shape = roundShape({ participants: n, plaintext: false });
      expect(shape.neighbourDegree).toBe(n - 1);
      expect(shape.thresholdAdjusted).toBe(false);
      const verdict = siteVerdict(configOf(n, shape));
      if (n === 2) {
        expect(shape.belowDefaultPolicy?.reason).toBe('TOO_FEW_TOLERATED_COLLUDERS');
        // min_threshold 3 refuses first; without it the margin itself does.
        expect(verdict).toBe('THRESHOLD_BELOW_SITE_MINIMUM');
        expect(siteVerdict(configOf(n, shape), { ...defaultSite, minThreshold: 2 })).toBe('TOO_FEW_TOLERATED_COLLUDERS');
      } else {
        expect(shape.belowDefaultPolicy, `n = ${n}`).toBeUndefined();
        expect(verdict, `n = ${n}`).toBe('accepted');
      }
    }
  });

  it('use t = 3 for three sites (one tolerated colluder), and keep the two-thirds t for plaintext rounds', () => {
    expect(roundShape({ participants: 3, plaintext: false }).reconstructionThreshold).toBe(3);
    expect(roundShape({ participants: 4, plaintext: false }).reconstructionThreshold).toBe(3);
    expect(roundShape({ participants: 5, plaintext: false }).reconstructionThreshold).toBe(4);
    const plaintext = roundShape({ participants: 3, plaintext: true });
    expect(plaintext).toMatchObject({ reconstructionThreshold: 2, belowDefaultPolicy: undefined });
    expect(siteVerdict(configOf(3, plaintext, true), { ...defaultSite, allowPlaintext: true, minThreshold: 2 })).toBe('accepted');
  });
});

describe('an operator\'s k and t', () => {
  it('keeps a valid configured t below the default margin, and says why default sites refuse it', () => {
    const shape = roundShape({ participants: 5, plaintext: false, configuredThreshold: 3 });
    expect(shape).toMatchObject({ neighbourDegree: 4, reconstructionThreshold: 3, thresholdAdjusted: false });
    expect(shape.belowDefaultPolicy?.reason).toBe('THRESHOLD_WITHOUT_MARGIN');
    expect(siteVerdict(configOf(5, shape))).toBe('THRESHOLD_WITHOUT_MARGIN');
  });

  it('moves a configured t that is invalid for the round to the smallest valid one', () => {
    const shape = roundShape({ participants: 4, plaintext: false, configuredThreshold: 2 });
    expect(shape).toMatchObject({ neighbourDegree: 3, reconstructionThreshold: 3, thresholdAdjusted: true, belowDefaultPolicy: undefined });
    expect(roundShape({ participants: 4, plaintext: false, configuredThreshold: 9 })).toMatchObject({ reconstructionThreshold: 4, thresholdAdjusted: false });
  });

  it('flags a configured ring that default sites refuse: too small a federation, or too small a k', () => {
    const small = roundShape({ participants: 50, plaintext: false, configuredDegree: 20 });
    expect(small.belowDefaultPolicy?.reason).toBe('COMPLETE_GRAPH_REQUIRED');
    expect(siteVerdict(configOf(50, small))).toBe('COMPLETE_GRAPH_REQUIRED');
    const thin = roundShape({ participants: 501, plaintext: false, configuredDegree: 20, configuredThreshold: 11 });
    expect(thin.belowDefaultPolicy?.reason).toBe('NEIGHBOUR_DEGREE_TOO_LOW');
    expect(siteVerdict(configOf(501, thin))).toBe('NEIGHBOUR_DEGREE_TOO_LOW');
    const wide = roundShape({ participants: 501, plaintext: false, configuredDegree: 40 });
    expect(wide).toMatchObject({ neighbourDegree: 40, reconstructionThreshold: 28, belowDefaultPolicy: undefined });
    expect(siteVerdict(configOf(501, wide))).toBe('accepted');
  });
});
