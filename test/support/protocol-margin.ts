/**
 * The collusion-margin rules of a site's policy (crypto/secagg/policy.ts) turned off, for harnesses that
 * exercise protocol mechanics with rounds a real site refuses by default: two-site federations, rings of
 * a few sites, t = 3 of 5 to survive two dropouts. The margin itself is tested against the defaults in
 * test/unit/secagg/policy.test.ts, test/unit/secagg/adversarial.test.ts and
 * test/unit/federation/round-shape.test.ts; `npm run demo` runs with the site.yaml defaults.
 */
import type { MarginPolicy } from '../../crypto/secagg/policy.js';

export const NO_COLLUSION_MARGIN = {
  minToleratedColluders: 0,
  minNeighbourDegree: 1,
  completeGraphUpTo: 0,
  requireTwoThirdsThreshold: false,
} as const satisfies MarginPolicy;
