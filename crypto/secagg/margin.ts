/**
 * The collusion margin of a round: how many sites may collude with a malicious coordinator before some
 * honest site's update can be unmasked, and the margin a site requires by default (DESIGN.md "Security
 * model"; the derivation is docs/protocol.md "Threat model"). One source for the site policy
 * (policy.ts), the default threshold (config.ts) and the coordinator's warnings, so the coordinator's
 * automatic choice and what a site accepts cannot drift apart.
 *
 * Letters as in the paper and docs/protocol.md: k = neighbour degree, t = Shamir threshold,
 * n = |U|; the complete graph is k = n - 1.
 */

/**
 * A site accepts at least this many colluding sites besides the coordinator by default: the coordinator
 * plus any one colluding site learn nothing about another site's update.
 */
export const DEFAULT_MIN_TOLERATED_COLLUDERS = 1;

/** Up to this many participants a site requires the complete graph (classic SecAgg, k = n - 1) by default. */
export const DEFAULT_COMPLETE_GRAPH_UP_TO = 100;

/**
 * The smallest k a site accepts by default, when |U| - 1 is larger (the complete graph always passes).
 * The worst-case guarantee depends on k alone: a coordinator that can abort rounds until the fresh
 * graph suits it (or that picks U) can put any site next to its colluders, so what protects a site is
 * B - 1 = min(2t - (k+1), k) - 1 colluders per neighbourhood, about a third of k at the default t,
 * however large the federation. 40 keeps that at 14 colluders (t = 28). Under the random placement an
 * honest-but-curious coordinator gets, 5% colluders then break the condition in fewer than 6e-8 of
 * rounds up to 1000 sites (3e-5 over 500 rounds), where k = 20 breaks it in 0.85% of rounds at 1000
 * sites (0.986 over 500 rounds) (docs/protocol.md, "Collusion table"). A site's work per round stays
 * about 40 key agreements, share encryptions and PRG streams. Below 100 sites the complete graph is
 * required anyway (DEFAULT_COMPLETE_GRAPH_UP_TO).
 */
export const DEFAULT_MIN_NEIGHBOUR_DEGREE = 40;

/**
 * B = min(2t - (k+1), k): for honest u, the coordinator learns nothing about u's update while every w
 * in u's closed neighbourhood has fewer than B colluding neighbours (docs/protocol.md, "The condition").
 * 2t - (k+1) colluding holders let the coordinator obtain both secrets of one dealer; the cap k is the
 * case where all of u's neighbours collude.
 */
export function collusionBound(neighbourDegree: number, threshold: number): number {
  return Math.min(2 * threshold - (neighbourDegree + 1), neighbourDegree);
}

/**
 * Colluding sites (besides the coordinator) a round tolerates in the worst case, when the coordinator
 * chooses where they sit: B - 1 = min(2t - (k+1), k) - 1. For the complete graph this is
 * min(2t - n, n - 1) - 1 (so never more than n - 2: with n - 1 colluders the sum itself gives the last
 * update away). Negative when t <= (k+1)/2: then the coordinator alone can split a neighbourhood's
 * honest holders and reconstruct both secrets of a site.
 */
export function toleratedColluders(neighbourDegree: number, threshold: number): number {
  return collusionBound(neighbourDegree, threshold) - 1;
}

/** ceil(2(k+1)/3): a two-thirds majority of each closed neighbourhood, the smallest t a site accepts. */
export function twoThirdsThreshold(neighbourDegree: number): number {
  return Math.ceil((2 * (neighbourDegree + 1)) / 3);
}

/**
 * The smallest t >= ceil(2(k+1)/3) that tolerates `minTolerated` colluders, or undefined when no
 * t <= k+1 does. Tolerating m colluders needs min(2t - (k+1), k) >= m + 1, i.e. k >= m + 1 and
 * t >= ceil((k + m + 2) / 2); that second bound exceeds the two-thirds one only for k = 2 (t = 3 instead
 * of 2) when m = 1. A round of two sites (k = 1) tolerates no colluder whatever t is.
 */
export function marginThreshold(neighbourDegree: number, minTolerated: number = DEFAULT_MIN_TOLERATED_COLLUDERS): number | undefined {
  if (neighbourDegree < minTolerated + 1) return undefined;
  return Math.max(twoThirdsThreshold(neighbourDegree), Math.ceil((neighbourDegree + minTolerated + 2) / 2));
}
