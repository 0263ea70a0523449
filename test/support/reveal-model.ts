/**
 * A small exact model of what a malicious coordinator, helped by colluding sites, learns from the
 * Unmask stage of SecAgg+ (DESIGN.md steps 3-6, "Security model"; Bonawitz et al., CCS 2017, Fig. 4,
 * round 4; Bell et al., CCS 2020, section 3). Sites are indices 0..n-1; member sets are bitmasks. The
 * rules a site applies come from the real code: acceptance of U2 and U3 uses the client's own
 * `liveHolders` / `isSubset`, and what a site reveals is whatever `decideReveals` (or an injected
 * variant of it, to show that a weakened rule is caught) returns for the view the coordinator showed it.
 *
 * Knowledge of the adversary (coordinator + colluders C):
 * - every secret of a colluder (so s_uv is known whenever u or v colludes);
 * - the share of b_d and of s_sk_d that each colluding holder of d keeps (holders of b_d: N[d];
 *   holders of s_sk_d: N(d), since a dealer zeroizes its own s_sk share - client-shares.ts);
 * - every share an honest site reveals in Unmask.
 * Site u's input is recoverable when b_u is known (t shares) and, for every neighbour v that u masked
 * with (v in N(u) ∩ U2 as u saw it), s_uv is known: v colludes, or s_sk_u or s_sk_v is known.
 */
import { buildNeighbourGraph, type NeighbourGraph } from '../../crypto/graph.js';
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { RevealDecision, RevealView } from '../../crypto/secagg/client-reveal.js';
import { isSubset, liveHolders } from '../../crypto/secagg/neighbourhood.js';

/** The reveal rule under test: decideReveals, or a deliberately weakened variant of it. */
export type DecideFn = (view: RevealView) => RevealDecision;

export interface RevealModel {
  readonly name: string;
  /** Site ids by index; for a ring, index = position on the ring. */
  readonly ids: readonly string[];
  readonly graph: NeighbourGraph;
  /** N(i) and N[i] as bitmasks. */
  readonly open: readonly number[];
  readonly closed: readonly number[];
  /** U1 (every site advertised): all n bits. */
  readonly all: number;
  readonly threshold: number;
  /** Effective degree k (|U1| - 1 for the complete graph). */
  readonly degree: number;
  /** The weakest site policy: the fewer survivors a site accepts, the more views the coordinator has. */
  readonly minParticipants: number;
}

/** What one honest site was shown: U2 and U3 as bitmasks. */
export interface View {
  readonly u2: number;
  readonly u3: number;
}

/** The shares one honest site revealed, as bitmasks of dealers. */
export interface Revealed {
  readonly selfMask: number;
  readonly maskKey: number;
}

export const bit = (index: number): number => 1 << index;
export const has = (mask: number, index: number): boolean => (mask & bit(index)) !== 0;

export function popcount(mask: number): number {
  let count = 0;
  for (let rest = mask; rest !== 0; rest &= rest - 1) count++;
  return count;
}

export function indices(mask: number): number[] {
  const out: number[] = [];
  for (let index = 0; mask >>> index !== 0; index++) if (has(mask, index)) out.push(index);
  return out;
}

/**
 * The model over the real graph builder: k >= n - 1 gives the complete graph, an even k the ring of
 * DESIGN.md step 2. Ids are relabelled so that index i is ring position i, which makes every ring the
 * circulant graph C_n(1..k/2) whatever the seed (the seed only decides which site sits where).
 */
export function createModel(options: { name: string; sites: number; degree: number; threshold: number; minParticipants?: number }): RevealModel {
  const members = Array.from({ length: options.sites }, (_, index) => `s${String(index).padStart(2, '0')}`);
  const graph = buildNeighbourGraph(sha256(utf8(`reveal-exhaustive ${options.name}`)), members, options.degree);
  const ids = graph.ring;
  const indexOf = new Map(ids.map((siteId, index) => [siteId, index]));
  const open = ids.map((siteId) => graph.neighbours(siteId).reduce((mask, neighbour) => mask | bit(indexOf.get(neighbour) as number), 0));
  return {
    name: options.name,
    ids,
    graph,
    open,
    closed: open.map((mask, index) => mask | bit(index)),
    all: bit(options.sites) - 1,
    threshold: options.threshold,
    degree: Math.min(options.degree, options.sites - 1),
    minParticipants: options.minParticipants ?? 1,
  };
}

const idSets = new WeakMap<RevealModel, Map<number, ReadonlySet<string>>>();

/** The site ids of `mask` (cached per model: the reveal rule reads but never changes the sets it gets). */
export function idSet(model: RevealModel, mask: number): ReadonlySet<string> {
  let cache = idSets.get(model);
  if (cache === undefined) idSets.set(model, (cache = new Map()));
  let set = cache.get(mask);
  if (set === undefined) cache.set(mask, (set = new Set(indices(mask).map((index) => model.ids[index] as string))));
  return set;
}

/**
 * The client's acceptance of U2 (client-shares.ts, acceptShareDelivery): itself in U2, U2 ⊆ U1,
 * |U2| >= its minimum, t members of its closed neighbourhood in U2. Shares of every U2 neighbour are
 * available, since every member of U1 dealt (a coordinator withholding one only makes the site refuse).
 */
export function acceptsShareSurvivors(model: RevealModel, site: number, u2: number): boolean {
  const survivors = idSet(model, u2);
  return (
    has(u2, site) &&
    isSubset(survivors, idSet(model, model.all)) &&
    survivors.size >= model.minParticipants &&
    liveHolders(model.graph, model.ids[site] as string, survivors) >= model.threshold
  );
}

/**
 * The client's acceptance of U3 (client-survivors.ts, acceptMaskedSurvivors): itself in U3, U3 ⊆ U2,
 * |U3| >= its minimum. A signed closing exists for every neighbour: every honest site uploaded, and a
 * colluder signs whatever closing it is asked for.
 */
export function acceptsMaskedSurvivors(model: RevealModel, site: number, view: View): boolean {
  return has(view.u3, site) && isSubset(idSet(model, view.u3), idSet(model, view.u2)) && popcount(view.u3) >= model.minParticipants;
}

/**
 * What `site` reveals under `view` when the coordinator forwards the consistency signatures of
 * `signers` (the site itself always counts: client-survivors.ts, consistencySigners) and the closings
 * of `digestMatches` carry its H(U2). Undefined when the site refuses.
 */
export function revealOf(model: RevealModel, decide: DecideFn, site: number, view: View, signers: number, digestMatches: number): Revealed | undefined {
  const decision = decide({
    self: model.ids[site] as string,
    closedNeighbourhood: model.graph.closedNeighbourhood(model.ids[site] as string),
    shareSurvivors: idSet(model, view.u2),
    maskedSurvivors: idSet(model, view.u3),
    consistencySigners: idSet(model, signers | bit(site)),
    survivorDigestMatches: idSet(model, digestMatches),
    reconstructionThreshold: model.threshold,
    minParticipants: model.minParticipants,
    alreadyRevealed: new Map(),
    plaintext: false,
  });
  if (decision.action === 'refuse') return undefined;
  const indexOf = (siteId: string): number => model.ids.indexOf(siteId);
  let selfMask = 0;
  let maskKey = 0;
  for (const { dealer, secret } of decision.reveals) {
    if (secret === 'self_mask') selfMask |= bit(indexOf(dealer));
    else maskKey |= bit(indexOf(dealer));
  }
  return { selfMask, maskKey };
}

/** DESIGN.md threat model for target u: every w in N[u] has fewer than min(2t - (k+1), k) colluding neighbours. */
export function collusionBound(model: RevealModel): number {
  return Math.min(2 * model.threshold - (model.degree + 1), model.degree);
}

export function withinBound(model: RevealModel, colluders: number, target: number): boolean {
  return indices(model.closed[target] as number).every((w) => popcount((model.open[w] as number) & colluders) < collusionBound(model));
}

/** Number of shares of b_d (holders N[d]) and of s_sk_d (holders N(d)) the adversary holds. */
export function knownShares(model: RevealModel, colluders: number, reveals: ReadonlyMap<number, Revealed>, dealer: number): { selfMask: number; maskKey: number } {
  const colludingHolders = popcount((model.open[dealer] as number) & colluders);
  let selfMask = colludingHolders;
  let maskKey = colludingHolders;
  for (const [holder, revealed] of reveals) {
    if (has(colluders, holder)) continue;
    if (has(revealed.selfMask, dealer) && has(model.closed[dealer] as number, holder)) selfMask++;
    if (has(revealed.maskKey, dealer) && has(model.open[dealer] as number, holder)) maskKey++;
  }
  return { selfMask, maskKey };
}

/** Honest sites whose input the adversary can unmask, given the U2 each masked with and all reveals. */
export function exposedSites(model: RevealModel, colluders: number, views: ReadonlyMap<number, View>, reveals: ReadonlyMap<number, Revealed>): number[] {
  const t = model.threshold;
  const known = (dealer: number, secret: 'selfMask' | 'maskKey'): boolean => has(colluders, dealer) || knownShares(model, colluders, reveals, dealer)[secret] >= t;
  const exposed: number[] = [];
  for (const [site, view] of views) {
    if (has(colluders, site) || !known(site, 'selfMask')) continue;
    const masked = indices((model.open[site] as number) & view.u2);
    if (masked.every((v) => has(colluders, v) || known(site, 'maskKey') || known(v, 'maskKey'))) exposed.push(site);
  }
  return exposed;
}

/**
 * Exact evaluation of one joint assignment: each honest site counts as signers itself, its honest
 * neighbours in its U3 that were shown the identical view, and its colluding neighbours in its U3
 * (colluders sign anything) - or the subset `forwarded` names; digest matches are the neighbours in
 * U3 whose U2 equals its own (colluders: always). Returns every site's reveal and the exposed sites.
 */
export function evaluateAssignment(
  model: RevealModel,
  decide: DecideFn,
  colluders: number,
  views: ReadonlyMap<number, View>,
  forwarded?: ReadonlyMap<number, number>,
): { reveals: Map<number, Revealed>; exposed: number[] } {
  const reveals = new Map<number, Revealed>();
  for (const [site, view] of views) {
    const inU3 = (model.open[site] as number) & view.u3;
    let signers = bit(site) | (inU3 & colluders);
    let matches = inU3 & colluders;
    for (const [other, otherView] of views) {
      if (!has(inU3, other)) continue;
      if (otherView.u2 === view.u2) matches |= bit(other);
      if (otherView.u2 === view.u2 && otherView.u3 === view.u3) signers |= bit(other);
    }
    const chosen = forwarded?.get(site);
    const revealed = revealOf(model, decide, site, view, chosen === undefined ? signers : chosen & signers, matches);
    if (revealed !== undefined) reveals.set(site, revealed);
  }
  return { reveals, exposed: exposedSites(model, colluders, views, reveals) };
}

/** One line per site for a printed attack: who colludes, what each honest site was shown and revealed. */
export function describeAssignment(colluders: number, views: ReadonlyMap<number, View>, reveals: ReadonlyMap<number, Revealed>): string[] {
  const names = (mask: number): string => `{${indices(mask).join(',')}}`;
  return [...views.keys()]
    .sort((a, b) => a - b)
    .map((site) => {
      const view = views.get(site) as View;
      const revealed = reveals.get(site);
      const what = revealed === undefined ? 'refuses' : `reveals b-shares of ${names(revealed.selfMask)}, s_sk-shares of ${names(revealed.maskKey)}`;
      return `site ${site}: U2 = ${names(view.u2)}, U3 = ${names(view.u3)} -> ${what}`;
    })
    .concat([`colluders: ${names(colluders)}`]);
}
