/**
 * Conventions both state machines must apply identically: where a holder's Shamir share sits (its x
 * coordinate), which sign a pairwise mask takes, and the member-set arithmetic of the survivor rules.
 */
import { compareSiteIds } from '../graph.js';
import type { NeighbourGraph } from '../graph.js';
import { secaggInvalid } from './errors.js';

/** Length of b and of s_sk, the two secrets every site shares among its neighbourhood. */
export const SECRET_LENGTH = 32;

/** x coordinate of `holder`'s shares: 1 + its index in U1 sorted by id (DESIGN.md step 3). */
export function shareCoordinate(members: readonly string[], holder: string): number {
  const index = members.indexOf(holder);
  if (index < 0) throw secaggInvalid('UNKNOWN_SITE', `site ${JSON.stringify(holder)} is not a member of U1`);
  return index + 1;
}

/**
 * Sign of the pairwise mask PRG(s_uv) in u's input: +1 if u < v, -1 otherwise (Bonawitz et al., CCS
 * 2017, section 3: the masks of u and v cancel in the sum). Order = UTF-8 bytes of the ids.
 */
export function pairwiseMaskSign(self: string, other: string): 1 | -1 {
  return compareSiteIds(self, other) < 0 ? 1 : -1;
}

/** How many members of `siteId`'s closed neighbourhood are in `present`. */
export function liveHolders(graph: NeighbourGraph, siteId: string, present: ReadonlySet<string>): number {
  let count = 0;
  for (const member of graph.closedNeighbourhood(siteId)) if (present.has(member)) count++;
  return count;
}

/** Whether every element of `subset` is in `superset`. */
export function isSubset(subset: Iterable<string>, superset: ReadonlySet<string>): boolean {
  for (const member of subset) if (!superset.has(member)) return false;
  return true;
}

/**
 * A list of site ids as a set, refusing duplicates and non-strings (a duplicated id in a survivor list
 * is a malformed message, not a set to be silently deduplicated).
 */
export function siteIdSet(siteIds: unknown, field: string, context?: { stage?: string; site?: string }): Set<string> {
  if (!Array.isArray(siteIds)) throw secaggInvalid('MALFORMED_MESSAGE', `${field} must be an array of site ids`, context);
  const set = new Set<string>();
  for (const siteId of siteIds) {
    if (typeof siteId !== 'string' || siteId.length === 0 || set.has(siteId)) {
      throw secaggInvalid('MALFORMED_MESSAGE', `${field} must list distinct non-empty site ids; ${JSON.stringify(siteId)} is not`, context);
    }
    set.add(siteId);
  }
  return set;
}
