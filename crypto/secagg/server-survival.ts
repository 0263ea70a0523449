/**
 * Whether a round can still complete (DESIGN.md "A round": a round completes while every secret it
 * needs has t live holders in U3, each holding t matching signatures; otherwise it aborts). The
 * coordinator checks this at every stage close, so it aborts the moment a shortfall is known - before
 * any site is asked to reveal a share that could not help.
 *
 * Needed secrets (Bonawitz et al., CCS 2017, Fig. 4, round 4, restricted to graph neighbourhoods as in
 * Bell et al., CCS 2020): b_u of every u in U3, and s_sk of every u in U2 \ U3 that has a neighbour in U3
 * (that neighbour's input carries the pairwise mask with u, which nobody else can remove).
 */
import type { NeighbourGraph } from '../graph.js';
import { sortSiteIds } from '../graph.js';
import type { RevealedSecret } from './messages.js';
import { liveHolders } from './neighbourhood.js';

export interface NeededSecret {
  readonly dealer: string;
  readonly secret: RevealedSecret;
}

export function neededSecrets(graph: NeighbourGraph, shareSurvivors: ReadonlySet<string>, maskedSurvivors: ReadonlySet<string>): NeededSecret[] {
  const needed: NeededSecret[] = [];
  for (const dealer of sortSiteIds(shareSurvivors)) {
    if (maskedSurvivors.has(dealer)) {
      needed.push({ dealer, secret: 'self_mask' });
    } else if (graph.neighbours(dealer).some((neighbour) => maskedSurvivors.has(neighbour))) {
      needed.push({ dealer, secret: 'mask_key' });
    }
  }
  return needed;
}

export interface Shortfall extends NeededSecret {
  /** Holders of the secret's shares among the sites that can still reveal. */
  readonly live: number;
}

/** Needed secrets with fewer than t holders among `holders`. */
export function shortfalls(graph: NeighbourGraph, needed: readonly NeededSecret[], holders: ReadonlySet<string>, threshold: number): Shortfall[] {
  const short: Shortfall[] = [];
  for (const item of needed) {
    const live = liveHolders(graph, item.dealer, holders);
    if (live < threshold) short.push({ ...item, live });
  }
  return short;
}

/**
 * Sites that will reveal: consistency signers with at least t signers in their closed neighbourhood
 * (the site's own rule, client-reveal.ts), assuming honest sites that all saw the same U2 and U3.
 */
export function predictedRevealers(graph: NeighbourGraph, signers: ReadonlySet<string>, threshold: number): Set<string> {
  const revealers = new Set<string>();
  for (const signer of signers) if (liveHolders(graph, signer, signers) >= threshold) revealers.add(signer);
  return revealers;
}

/** A human-readable summary of shortfalls for an abort message (ids and counts only). */
export function describeShortfalls(short: readonly Shortfall[], threshold: number): string {
  const shown = short.slice(0, 5).map((item) => `${item.secret} of ${JSON.stringify(item.dealer)} has ${item.live}`);
  const more = short.length > 5 ? ` and ${short.length - 5} more` : '';
  return `${short.length} needed secret(s) lack t = ${threshold} live holders: ${shown.join('; ')}${more}`;
}
