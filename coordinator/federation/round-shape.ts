/**
 * The neighbour degree k and threshold t of a round of n selected sites (DESIGN.md step 1), from what the
 * operator configured (`secagg.degree`, `secagg.threshold`) or the defaults. Pure, so every round size
 * can be checked against the site's default policy in a test.
 *
 * Automatic choice: the complete graph (k = n - 1) and defaultThreshold(k): ceil(2(k+1)/3), 3 for three
 * sites. It meets the default site policy (crypto/secagg/margin.ts) for every n >= 3. A round of two
 * sites tolerates no colluder whatever t is (the other site, knowing its own update, reads this one's off
 * the sum): sites with the default policy refuse it, and the coordinator says so in its log.
 */
import { defaultThreshold } from '../../crypto/secagg/config.js';
import { collusionMarginShortfall, type MarginShortfall } from '../../crypto/secagg/policy.js';

export interface RoundShapeInput {
  /** n = |U|, at least 2. */
  readonly participants: number;
  readonly plaintext: boolean;
  /** `secagg.degree`; undefined, or at least n - 1, means the complete graph. */
  readonly configuredDegree?: number;
  /** `secagg.threshold`; undefined means defaultThreshold(k). */
  readonly configuredThreshold?: number;
}

export interface RoundShape {
  readonly neighbourDegree: number;
  readonly reconstructionThreshold: number;
  /** The configured t was outside (k+1)/2 < t <= k+1 for this round's k and was moved to the nearest valid value. */
  readonly thresholdAdjusted: boolean;
  /** Why a site with the default policy refuses this round, if it does (masked rounds only). */
  readonly belowDefaultPolicy: MarginShortfall | undefined;
}

export function roundShape(input: RoundShapeInput): RoundShape {
  const complete = input.participants - 1;
  const k = input.configuredDegree === undefined || input.configuredDegree >= complete ? complete : input.configuredDegree;
  let t = defaultThreshold(k, input.plaintext);
  let thresholdAdjusted = false;
  if (input.configuredThreshold !== undefined) {
    // Which k a round gets depends on how many sites were selected, so a t that suits one round can fall
    // outside (k+1)/2 < t <= k+1 for another: move it to the nearest valid value (upwards never weakens
    // the round) instead of letting an invalid RoundConfig end the federation loop.
    t = Math.min(Math.max(input.configuredThreshold, Math.floor((k + 1) / 2) + 1), k + 1);
    thresholdAdjusted = t > input.configuredThreshold;
  }
  // An operator's t is kept even below the default margin: sites decide what they accept (each refuses
  // with a reason code), and a federation whose sites all lowered their policy may want it.
  const belowDefaultPolicy = input.plaintext ? undefined : collusionMarginShortfall(input.participants, k, t);
  return { neighbourDegree: k, reconstructionThreshold: t, thresholdAdjusted, belowDefaultPolicy };
}
