/**
 * The collusion margin a site requires of a masked round (crypto/secagg/margin.ts, policy.ts): each rule
 * has rounds that only it refuses, the (n, k, t) = (501, 20, 11) round of the issue is refused by every
 * rule that applies to it, and the boundaries sit where the formulas put them.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { createRoundConfig, defaultThreshold, makeRoundId, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import {
  DEFAULT_COMPLETE_GRAPH_UP_TO,
  DEFAULT_MIN_NEIGHBOUR_DEGREE,
  DEFAULT_MIN_TOLERATED_COLLUDERS,
  collusionBound,
  marginThreshold,
  toleratedColluders,
  twoThirdsThreshold,
} from '../../../../crypto/secagg/margin.js';
import { checkCommittedRoundAgainstPolicy, checkRoundConfigAgainstPolicy, collusionMarginShortfall, type SitePolicy } from '../../../../crypto/secagg/policy.js';
import { secaggRefusal as refusalOf } from '../../../support/secagg-refusal.js';

const taskHash = sha256(utf8('policy test task'));
const SITE = 's-0000';
/** Only the margin rules can refuse: the other rules are as lax as they go. */
const lax: SitePolicy = { pinnedTaskHashes: [taskHash], minParticipants: 2, minThreshold: 1, allowPlaintext: true };

const participantsCache = new Map<number, string[]>();
function participants(count: number): string[] {
  let ids = participantsCache.get(count);
  if (ids === undefined) {
    ids = Array.from({ length: count }, (_, index) => `s-${String(index).padStart(4, '0')}`);
    participantsCache.set(count, ids);
  }
  return ids;
}

function round(n: number, k: number, t: number, plaintext = false): RoundConfig {
  return createRoundConfig({
    federationId: 'fed',
    roundId: makeRoundId(1n, new Uint8Array(16)),
    participants: participants(n),
    taskHash,
    modelHash: sha256(utf8('model')),
    optimizerStateHash: sha256(utf8('optimiser')),
    neighbourDegree: k,
    reconstructionThreshold: t,
    layout: { parameterSegments: [{ length: 4, bound: 1 }], maxLossPerExample: 5, maxEvalExamples: 100 },
    maxWeight: 100,
    plaintext,
  });
}

function verdict(config: RoundConfig, policy: Partial<SitePolicy> = {}): string {
  try {
    checkRoundConfigAgainstPolicy(config, SITE, { ...lax, ...policy });
    return 'accepted';
  } catch (error) {
    if (!(error instanceof SecAggError)) throw error;
    expect(error.code).toBe('FAILED_PRECONDITION');
    return error.reason;
  }
}

describe('collusion margin formulas', () => {
  it('tolerated colluders = min(2t - (k+1), k) - 1, complete graph min(2t - n, n - 1) - 1', () => {
    expect(collusionBound(20, 11)).toBe(1);
    expect(toleratedColluders(20, 11)).toBe(0);
    expect(toleratedColluders(20, 14)).toBe(6);
    expect(toleratedColluders(1, 2)).toBe(0); // two sites: the sum gives the other's update away
    expect(toleratedColluders(2, 2)).toBe(0);
    expect(toleratedColluders(2, 3)).toBe(1); // three sites, t = 3: not 2t - n - 1 = 2, capped by k
    expect(toleratedColluders(3, 3)).toBe(1);
    expect(toleratedColluders(4, 5)).toBe(3); // complete graph, t = n: n - 2
    expect(toleratedColluders(49, 34)).toBe(17); // docs/protocol.md collusion table, n = 50
    expect(toleratedColluders(4, 2)).toBeLessThan(0); // t <= (k+1)/2
  });

  it('marginThreshold is the smallest t >= ceil(2(k+1)/3) tolerating m colluders, for every k up to 1000', () => {
    for (let m = 0; m <= 4; m++) {
      for (let k = 1; k <= 1000; k++) {
        let smallest: number | undefined;
        for (let t = twoThirdsThreshold(k); t <= k + 1; t++) {
          if (toleratedColluders(k, t) >= m) {
            smallest = t;
            break;
          }
        }
        expect(marginThreshold(k, m), `k = ${k}, m = ${m}`).toBe(smallest);
      }
    }
  });

  it('the default threshold meets the default margin wherever k allows it, and is the two-thirds one in plaintext', () => {
    expect(DEFAULT_MIN_TOLERATED_COLLUDERS).toBe(1);
    expect(defaultThreshold(1)).toBe(2);
    expect(defaultThreshold(2)).toBe(3);
    expect(defaultThreshold(2, true)).toBe(2);
    for (let k = 2; k <= 1000; k++) {
      expect(defaultThreshold(k)).toBe(marginThreshold(k));
      expect(toleratedColluders(k, defaultThreshold(k))).toBeGreaterThanOrEqual(1);
      if (k >= 3) expect(defaultThreshold(k)).toBe(twoThirdsThreshold(k));
    }
  });
});

describe('a site with the default margin', () => {
  it.each([
    // n, k, t, verdict (rows marked * are the ones only that rule refuses)
    [501, 20, 11, 'NEIGHBOUR_DEGREE_TOO_LOW'], // the round: collusion bound 1, no colluder tolerated
    [501, 38, 26, 'NEIGHBOUR_DEGREE_TOO_LOW'], // * k just below 40
    [501, 40, 28, 'accepted'], // 14 colluders tolerated
    [501, 40, 27, 'THRESHOLD_WITHOUT_MARGIN'], // * t just below ceil(82/3) = 28 (still tolerates 12)
    [501, 500, 334, 'accepted'], // complete graph, default t
    [101, 40, 28, 'accepted'], // above complete_graph_up_to, a ring is fine
    [101, 100, 68, 'accepted'],
    [100, 98, 66, 'COMPLETE_GRAPH_REQUIRED'], // * at complete_graph_up_to a ring is refused
    [100, 99, 67, 'accepted'],
    [41, 40, 28, 'accepted'],
    [6, 5, 4, 'accepted'], // one colluder tolerated
    [5, 4, 4, 'accepted'],
    [5, 4, 3, 'THRESHOLD_WITHOUT_MARGIN'],
    [4, 3, 3, 'accepted'],
    [3, 2, 3, 'accepted'],
    [3, 2, 2, 'TOO_FEW_TOLERATED_COLLUDERS'], // * two-thirds holds (t = 2), yet one colluder exposes a site
    [2, 1, 2, 'TOO_FEW_TOLERATED_COLLUDERS'],
  ] as const)('|U| = %i, k = %i, t = %i: %s', (n, k, t, expected) => {
    expect(verdict(round(n, k, t))).toBe(expected);
  });

  it('refuses the issue round (501, 20, 11) under every margin rule that applies, each on its own', () => {
    const config = round(501, 20, 11);
    expect(verdict(config)).toBe('NEIGHBOUR_DEGREE_TOO_LOW');
    expect(verdict(config, { minNeighbourDegree: 20 })).toBe('THRESHOLD_WITHOUT_MARGIN');
    expect(verdict(config, { minNeighbourDegree: 20, requireTwoThirdsThreshold: false })).toBe('TOO_FEW_TOLERATED_COLLUDERS');
    expect(verdict(config, { minNeighbourDegree: 20, requireTwoThirdsThreshold: false, minToleratedColluders: 0 })).toBe('accepted');
    // With the two-thirds threshold the same graph tolerates six colluders.
    expect(verdict(round(501, 20, 14), { minNeighbourDegree: 20 })).toBe('accepted');
  });

  it('takes min_neighbour_degree as min(|U| - 1, it), and complete_graph_up_to = 0 as "never required"', () => {
    expect(verdict(round(30, 28, 20), { completeGraphUpTo: 0 })).toBe('NEIGHBOUR_DEGREE_TOO_LOW');
    expect(verdict(round(30, 29, 20), { completeGraphUpTo: 0 })).toBe('accepted');
    expect(verdict(round(150, 40, 28), { minNeighbourDegree: DEFAULT_MIN_NEIGHBOUR_DEGREE })).toBe('accepted');
    expect(verdict(round(6, 4, 4), { completeGraphUpTo: 0, minNeighbourDegree: 4 })).toBe('accepted');
    expect(verdict(round(6, 4, 4), { completeGraphUpTo: 5, minNeighbourDegree: 4 })).toBe('accepted');
    expect(verdict(round(6, 4, 4), { completeGraphUpTo: 6, minNeighbourDegree: 4 })).toBe('COMPLETE_GRAPH_REQUIRED');
    expect(DEFAULT_COMPLETE_GRAPH_UP_TO).toBe(100);
  });

  it('honours a stricter or laxer min_tolerated_colluders at its boundary', () => {
    expect(verdict(round(6, 5, 4), { minToleratedColluders: 2 })).toBe('TOO_FEW_TOLERATED_COLLUDERS');
    expect(verdict(round(6, 5, 5), { minToleratedColluders: 2 })).toBe('accepted');
    expect(verdict(round(6, 5, 5), { minToleratedColluders: 3 })).toBe('accepted');
    expect(verdict(round(6, 5, 5), { minToleratedColluders: 4 })).toBe('TOO_FEW_TOLERATED_COLLUDERS');
    expect(verdict(round(3, 2, 2), { minToleratedColluders: 0 })).toBe('accepted');
    expect(verdict(round(2, 1, 2), { minToleratedColluders: 0 })).toBe('accepted');
  });

  it('does not apply the margin to plaintext rounds, which it must allow explicitly', () => {
    expect(verdict(round(3, 2, 2, true))).toBe('accepted');
    expect(verdict(round(501, 20, 11, true))).toBe('accepted');
    expect(verdict(round(501, 20, 11, true), { allowPlaintext: false })).toBe('PLAINTEXT_NOT_ALLOWED');
  });

  it('names the round and the site.yaml key, not the site settings, when it refuses', () => {
    try {
      checkRoundConfigAgainstPolicy(round(3, 2, 2), SITE, { ...lax, minToleratedColluders: 7 });
      throw new Error('expected a refusal');
    } catch (error) {
      expect(error).toBeInstanceOf(SecAggError);
      const message = (error as SecAggError).message;
      expect(message).toContain('RoundConfig (|U| = 3, k = 2, t = 2) tolerates 0 colluding site(s)');
      expect(message).toContain('policy.min_tolerated_colluders');
      expect(message).not.toContain('7');
    }
  });
});

describe('a site\'s other rules, each at its boundary (a lying coordinator tries the value just past it)', () => {
  it('accepts its own federation and refuses another, naming both', () => {
    expect(verdict(round(4, 3, 3), { federationId: 'fed' })).toBe('accepted');
    expect(verdict(round(4, 3, 3), { federationId: 'mine' })).toBe('FEDERATION_MISMATCH');
    expect(refusalOf(() => checkRoundConfigAgainstPolicy(round(4, 3, 3), SITE, { ...lax, federationId: 'mine' })).message).toBe(
      'RoundConfig.federationId "fed" is not this site\'s federation "mine" (stage round_config, site "s-0000")',
    );
  });

  it('accepts a task that is any one of several pinned, and refuses one pinned by none', () => {
    const other = sha256(utf8('another pinned task'));
    expect(verdict(round(4, 3, 3), { pinnedTaskHashes: [other, taskHash] })).toBe('accepted');
    expect(verdict(round(4, 3, 3), { pinnedTaskHashes: [other] })).toBe('TASK_NOT_PINNED');
  });

  it('takes minimum participants and minimum threshold as inclusive bounds', () => {
    expect(verdict(round(4, 3, 3), { minParticipants: 4 })).toBe('accepted');
    expect(verdict(round(4, 3, 3), { minParticipants: 5 })).toBe('TOO_FEW_PARTICIPANTS');
    expect(verdict(round(4, 3, 3), { minThreshold: 3 })).toBe('accepted');
    expect(verdict(round(4, 3, 3), { minThreshold: 4 })).toBe('THRESHOLD_BELOW_SITE_MINIMUM');
  });

  it('accepts a round whose members are all on the pinned roster, and names one outsider when one is not', () => {
    const members = participants(4);
    expect(verdict(round(4, 3, 3), { roster: new Set([...members, 'spare-site']) })).toBe('accepted');
    expect(verdict(round(4, 3, 3), { roster: new Set(members.slice(0, 3)) })).toBe('SITE_NOT_IN_ROSTER');
    expect(refusalOf(() => checkRoundConfigAgainstPolicy(round(4, 3, 3), SITE, { ...lax, roster: new Set(members.slice(1, 3)) })).message).toBe(
      'RoundConfig.participants includes 2 site(s) outside the pinned roster, e.g. "s-0000" (stage round_config, site "s-0000")',
    );
  });

  it('refuses t = (k+1)/2 in its own words (FAILED_PRECONDITION), and leaves a non-integer t to the structural check', () => {
    const atHalf = { ...round(4, 3, 3), reconstructionThreshold: 2 };
    const refusal = refusalOf(() => checkRoundConfigAgainstPolicy(atHalf, SITE, lax));
    expect(refusal).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'THRESHOLD_TOO_LOW', stage: 'round_config', site: SITE });
    expect(refusal.message).toBe(
      'RoundConfig.reconstructionThreshold t = 2 must exceed (k+1)/2 = 2; a minority of a neighbourhood could otherwise reconstruct (stage round_config, site "s-0000")',
    );
    const fractional = refusalOf(() => checkRoundConfigAgainstPolicy({ ...round(5, 4, 4), reconstructionThreshold: 2.5 }, SITE, lax));
    expect(fractional.code).toBe('INVALID_ARGUMENT');
    expect(fractional.reason).not.toBe('THRESHOLD_TOO_LOW');
  });

  it('checks a committed round (a link of its chain) by the same rules, without the membership rule, under the commit_record stage', () => {
    const other = round(4, 3, 3);
    expect(() => checkCommittedRoundAgainstPolicy(other, lax)).not.toThrow();
    const refusal = refusalOf(() => checkCommittedRoundAgainstPolicy(other, { ...lax, minThreshold: 4 }));
    expect(refusal).toMatchObject({ reason: 'THRESHOLD_BELOW_SITE_MINIMUM', stage: 'commit_record', site: undefined });
    expect(refusal.message).toBe("RoundConfig.reconstructionThreshold t = 3 is below this site's minimum 4 (stage commit_record)");
    expect(refusalOf(() => checkRoundConfigAgainstPolicy(other, 'elsewhere', lax))).toMatchObject({ reason: 'SITE_NOT_IN_ROUND', stage: 'round_config', site: 'elsewhere' });
  });

  it('says which rule refused, with the round\'s values and the site\'s bound, for the site\'s own log', () => {
    const message = (config: RoundConfig, policy: Partial<SitePolicy>, siteId = SITE): string => refusalOf(() => checkRoundConfigAgainstPolicy(config, siteId, { ...lax, ...policy })).message;
    const where = ' (stage round_config, site "s-0000")';
    expect(message(round(4, 3, 3), { pinnedTaskHashes: [sha256(utf8('a')), sha256(utf8('b'))] })).toBe(`RoundConfig.taskHash ${Buffer.from(taskHash).toString('hex')} is not among the 2 task hashes this site pins${where}`);
    expect(message(round(4, 3, 3), {}, 'elsewhere')).toBe('RoundConfig.participants (4 sites) does not include this site (stage round_config, site "elsewhere")');
    expect(message(round(4, 3, 3), { minParticipants: 9 })).toBe(`RoundConfig.participants has 4 sites, this site requires at least 9${where}`);
    expect(message(round(4, 3, 3, true), { allowPlaintext: false })).toBe(`RoundConfig.plaintext is true but this site does not allow plaintext rounds (allow_plaintext: false)${where}`);
  });

  it('states each margin shortfall with the round\'s public values only', () => {
    expect(collusionMarginShortfall(6, 4, 4)?.message).toBe(
      'RoundConfig (|U| = 6, k = 4, t = 4) is not the complete graph (k = |U| - 1 = 5), which the site requires for a round of this size (policy.complete_graph_up_to)',
    );
    expect(collusionMarginShortfall(501, 20, 14)?.message).toBe(
      'RoundConfig (|U| = 501, k = 20, t = 14) gives each site fewer neighbours than the site requires (policy.min_neighbour_degree)',
    );
    expect(collusionMarginShortfall(5, 4, 3)?.message).toBe(
      'RoundConfig (|U| = 5, k = 4, t = 3) has t below ceil(2(k+1)/3) = 4, the two-thirds majority of a closed neighbourhood that a site requires',
    );
    // t <= (k+1)/2 leaves a negative margin; the message says 0, not a negative count.
    expect(collusionMarginShortfall(5, 4, 2, { requireTwoThirdsThreshold: false })?.message).toBe(
      'RoundConfig (|U| = 5, k = 4, t = 2) tolerates 0 colluding site(s) besides the coordinator (min(2t - (k+1), k) - 1), fewer than the site requires (policy.min_tolerated_colluders)',
    );
  });
});
