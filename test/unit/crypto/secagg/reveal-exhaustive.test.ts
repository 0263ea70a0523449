/**
 * Exhaustive check of the Unmask reveal rule (client-reveal.ts, decideReveals) against a malicious
 * coordinator with colluding sites (DESIGN.md "Security model"; docs/protocol.md, "Threat model").
 *
 * For each small configuration the search (test/support/reveal-search.ts) tries every way the
 * coordinator can show honest sites U2 and U3 views they accept, every subset of consistency signatures
 * it can forward (honest sites sign only the view they were shown, colluders sign anything), and every
 * colluding set within the bound "for every w in N[u], fewer than min(2t - (k+1), k) of w's neighbours
 * collude". No honest site's input may become recoverable. Beyond the bound the same search must find
 * an attack; it is printed, and one is replayed end to end against real SecAggClients.
 *
 * Symmetry: in a complete graph every permutation of sites is an automorphism, so one colluding set
 * per size and one target suffice; a ring is vertex-transitive (index = ring position), so the target
 * is site 0 and colluding sets are taken up to the reflection i -> -i that fixes it.
 */
import { describe, expect, it } from 'vitest';
import { decideReveals, type RevealDecision, type RevealView } from '../../../../crypto/secagg/client-reveal.js';
import { bit, collusionBound, createModel, describeAssignment, has, indices, popcount, withinBound, type DecideFn, type RevealModel } from '../../../support/reveal-model.js';
import { replayAttack } from '../../../support/reveal-replay.js';
import { searchTarget, type Attack, type SearchStats } from '../../../support/reveal-search.js';
import { cachedFederation } from '../../../support/secagg-sim.js';

interface Configuration {
  readonly name: string;
  readonly sites: number;
  readonly degree: number;
  readonly threshold: number;
  /** Beyond the bound: colluders, the targets searched, and the ones the search must expose. */
  readonly beyond: { readonly colluders: readonly number[]; readonly targets: readonly number[]; readonly exposed: readonly number[] };
}

/** Complete graph: one colluder more than the bound allows (sites n - bound .. n - 1), target 0. */
function completeGraph(name: string, sites: number, threshold: number): Configuration {
  const bound = Math.min(2 * threshold - sites, sites - 1);
  const colluders = Array.from({ length: bound }, (_, i) => sites - 1 - i);
  return { name, sites, degree: sites - 1, threshold, beyond: { colluders, targets: [0], exposed: [0] } };
}

/**
 * Complete graphs with the smallest t > (k+1)/2, the default t = ceil(2(k+1)/3) and t = k+1. The ring
 * of the issue: with 9 sites every site is within two hops of every other, so the bound admits no
 * colluder, and one colluder exposes exactly its neighbours (up to reflection 1 and 2; sites 3 and 4,
 * two hops away, stay safe). An 11-site ring: colluders can sit beyond two hops (sites 5, 6 from 0),
 * and two colluders two hops away (3 and 7, none adjacent to 0) expose site 0 - the second hop of the
 * condition is needed.
 */
const CONFIGURATIONS: readonly Configuration[] = [
  completeGraph('complete, 5 sites, t = 3 (smallest)', 5, 3),
  completeGraph('complete, 5 sites, t = 4 (default)', 5, 4),
  completeGraph('complete, 5 sites, t = 5 (k + 1)', 5, 5),
  completeGraph('complete, 6 sites, t = 4 (default and smallest)', 6, 4),
  completeGraph('complete, 6 sites, t = 5', 6, 5),
  { name: 'ring, 9 sites, k = 4, t = 3', sites: 9, degree: 4, threshold: 3, beyond: { colluders: [0], targets: [1, 2, 3, 4], exposed: [1, 2] } },
  { name: 'ring, 11 sites, k = 4, t = 3', sites: 11, degree: 4, threshold: 3, beyond: { colluders: [3, 7], targets: [0], exposed: [0] } },
];

const maskOf = (sites: readonly number[]): number => sites.reduce((mask, site) => mask | bit(site), 0);

/** Colluding sets (never containing target 0) within the bound for site 0, one per symmetry class. */
function colludingSetsWithinBound(model: RevealModel): number[] {
  const n = model.ids.length;
  if (model.degree === n - 1) {
    return Array.from({ length: n }, (_, size) => (size === 0 ? 0 : model.all & ~(bit(n - size) - 1))).filter((set) => !has(set, 0) && withinBound(model, set, 0));
  }
  const reflect = (mask: number): number => indices(mask).reduce((out, i) => out | bit((n - i) % n), 0);
  const sets: number[] = [];
  for (let set = 0; set <= model.all; set += 2) if (reflect(set) >= set && withinBound(model, set, 0)) sets.push(set);
  return sets;
}

function newStats(): SearchStats {
  return { decisions: 0, classViews: 0, assignments: 0 };
}

/** Raw size of the coordinator's choice per honest site before any reduction: accepted (U2, U3) pairs. */
function rawViewsPerSite(model: RevealModel): number {
  let count = 0;
  for (let u2 = 1; u2 <= model.all; u2 += 2) if (popcount(u2 & (model.closed[0] as number)) >= model.threshold) count += 2 ** (popcount(u2) - 1);
  return count;
}

function report(model: RevealModel, label: string, stats: SearchStats, started: number): void {
  console.log(
    `[reveal-exhaustive] ${model.name}: ${label}; ${stats.assignments.toPrecision(3)} joint assignments (class partitions x R-views), ` +
      `${stats.classViews} class views, ${stats.decisions} decideReveals calls; raw (U2, U3) views per honest site ${rawViewsPerSite(model)}; ${(performance.now() - started).toFixed(0)} ms`,
  );
}

function printAttack(model: RevealModel, attack: Attack): void {
  console.log(`[reveal-exhaustive] ${model.name}: attack on site ${attack.target} (exposes ${attack.exposed.join(', ')})\n  ${describeAssignment(attack.colluders, attack.views, attack.reveals).join('\n  ')}`);
}

describe('the reveal rule against every coordinator strategy', () => {
  describe.each(CONFIGURATIONS)('$name', (configuration) => {
    const model = createModel(configuration);
    const bound = collusionBound(model);

    it(`exposes no honest site while every w in N[u] has fewer than ${bound} colluding neighbours`, () => {
      const started = performance.now();
      const stats = newStats();
      const sets = colludingSetsWithinBound(model);
      expect(sets.length).toBeGreaterThan(0);
      for (const colluders of sets) {
        const attack = searchTarget(model, decideReveals, colluders, 0, stats);
        if (attack !== undefined) printAttack(model, attack);
        expect(attack).toBeUndefined();
      }
      report(model, `${sets.length} colluding set(s) within the bound, up to ${Math.max(...sets.map(popcount))} colluders`, stats, started);
    });

    it(`exposes a site once colluders ${configuration.beyond.colluders.join(', ')} break the bound`, () => {
      const started = performance.now();
      const stats = newStats();
      const colluders = maskOf(configuration.beyond.colluders);
      const exposed: number[] = [];
      for (const target of configuration.beyond.targets) {
        expect(withinBound(model, colluders, target)).toBe(false);
        const attack = searchTarget(model, decideReveals, colluders, target, stats);
        if (attack === undefined) continue;
        // The assignment was re-evaluated exactly (every view, signature and digest) before it is returned.
        expect(attack.exposed).toContain(target);
        if (exposed.length === 0) printAttack(model, attack);
        exposed.push(target);
      }
      expect(exposed).toEqual(configuration.beyond.exposed);
      report(model, `colluders ${configuration.beyond.colluders.join(', ')}: targets exposed ${exposed.join(', ')} of ${configuration.beyond.targets.join(', ')}`, stats, started);
    });
  });
});

/** Deliberately weakened rules: for each, the search must find an attack within the bound somewhere. */
const WEAKENED: readonly (readonly [string, DecideFn])[] = [
  ['t - 1 consistency signers suffice', (view: RevealView) => decideReveals({ ...view, reconstructionThreshold: view.reconstructionThreshold - 1 })],
  [
    'a surviving neighbour gets both its shares revealed',
    (view: RevealView): RevealDecision => {
      const decision = decideReveals(view);
      if (decision.action === 'refuse') return decision;
      return { ...decision, reveals: decision.reveals.flatMap((r) => (r.secret === 'self_mask' && r.dealer !== view.self ? [r, { dealer: r.dealer, secret: 'mask_key' as const }] : [r])) };
    },
  ],
  ["the neighbour's signed H(U2) is not compared", (view: RevealView) => decideReveals({ ...view, survivorDigestMatches: view.maskedSurvivors })],
];

describe('the search catches a weakened rule', () => {
  it.each(WEAKENED)('finds an attack within the bound when %s', (_name, decide) => {
    for (const configuration of CONFIGURATIONS) {
      const model = createModel(configuration);
      for (const colluders of colludingSetsWithinBound(model)) {
        const attack = searchTarget(model, decide, colluders, 0, newStats());
        if (attack === undefined) continue;
        expect(attack.exposed).toContain(0);
        printAttack(model, attack);
        return;
      }
    }
    expect.fail('no configuration exposed a site under the weakened rule');
  });
});

describe('an attack replayed against real SecAggClients', () => {
  it('the two-hop attack on the 11-site ring: views accepted, reveals as modelled, site 0 unmasked', () => {
    const configuration = CONFIGURATIONS.find((entry) => entry.sites === 11) as Configuration;
    const ring = createModel(configuration);
    const attack = searchTarget(ring, decideReveals, maskOf(configuration.beyond.colluders), 0, newStats()) as Attack;
    expect(popcount((ring.open[0] as number) & attack.colluders)).toBe(0);
    const result = replayAttack(cachedFederation(11, 'rx-'), ring, attack);
    expect(result.decisions).toEqual(new Map([...attack.views.keys()].map((site) => [site, attack.reveals.get(site)])));
    expect(result.recovered).toEqual(result.expected);
  });
});
