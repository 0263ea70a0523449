/**
 * Exhaustive search for a view assignment that lets a malicious coordinator (with colluders C) unmask
 * one honest target site u (model in reveal-model.ts). The search is exact for the reveal rule it is
 * given; the reductions below shrink the space without removing any outcome the adversary could reach.
 *
 * R1. Every honest site uploads and is shown some view (U2, U3). A site that gets no view, or refuses,
 *     reveals nothing and signs nothing; giving it a view only adds shares and signatures, and the
 *     coordinator can still drop whatever it forwards. Withheld ciphertexts or closings only make a site
 *     refuse, so they are covered by this too.
 * R2. Only b_u and s_sk_d for d in R = N[u] matter to u's input. Sites outside R are put in U2 and U3 of
 *     every view: their own shares are irrelevant to u, a larger U2/U3 never fails an acceptance check,
 *     and views that agree on R then agree everywhere, which only adds co-signers. A view is therefore a
 *     "R-view" rho: one of {out, U2 only, U3} for each member of R (3^|R| of them).
 * R3. Honest sites shown the same view form a class; a member's consistency signers are itself, its
 *     classmates in N(h) and its colluding neighbours in U3 (colluders sign anything), and the
 *     coordinator may forward any subset of them (every subset is tried). The search enumerates every
 *     partition of the honest sites into classes and every R-view per class (classes that happen to get
 *     the same R-view are the same class in reality; the merged partition is enumerated too and gives
 *     each member more signers, so nothing is lost).
 * R4. Digest matches: u's closing carries H(U2_u), so a site reveals u's b-share only if its U2 equals
 *     u's; this is modelled exactly. For other dealers the closing is taken to match (their b-shares are
 *     irrelevant to u); the assignment found is re-evaluated exactly before it is reported.
 * R5. Outcomes are counted per event (b_u, s_sk_d) and saturate at the shares the adversary still
 *     needs; the goal is monotone in them, so only Pareto-maximal outcomes are kept. Classes combine by a
 *     set-partition dynamic programme over subsets of the honest sites.
 */
import {
  acceptsMaskedSurvivors,
  acceptsShareSurvivors,
  bit,
  evaluateAssignment,
  has,
  indices,
  popcount,
  revealOf,
  type DecideFn,
  type Revealed,
  type RevealModel,
  type View,
} from './reveal-model.js';

export interface SearchStats {
  /** Calls of the reveal rule. */
  decisions: number;
  /** (class members, R-view) pairs evaluated. */
  classViews: number;
  /** Joint assignments (partition into classes x one R-view per class x U2_u on R) the programme covers (a float: it exceeds 2^53). */
  assignments: number;
}

export interface Attack {
  readonly target: number;
  readonly colluders: number;
  readonly views: ReadonlyMap<number, View>;
  readonly forwarded: ReadonlyMap<number, number>;
  readonly reveals: ReadonlyMap<number, Revealed>;
  readonly exposed: readonly number[];
}

interface Option {
  readonly value: number;
  /** The member outcomes this option combines (a linked list: member -> forwarded signers). */
  readonly picks?: Pick;
  readonly rho?: number;
  readonly members?: number;
  readonly rest?: Option;
}

interface Pick {
  readonly site: number;
  readonly signers: number;
  readonly next: Pick | undefined;
}

/** Counts are packed 4 bits per event: 3 for the value (<= t <= 7), 1 guard bit for the comparison. */
const FIELD_BITS = 4;
const FIELD_MASK = 7;

/** Searches every view assignment for one that exposes `target`; returns the first attack found. */
export function searchTarget(model: RevealModel, decide: DecideFn, colluders: number, target: number, stats: SearchStats): Attack | undefined {
  const honest = model.all & ~colluders;
  const relevant = model.closed[target] as number;
  const coordinates = indices(relevant);
  const outside = model.all & ~relevant;
  const rhoCount = 3 ** coordinates.length;
  const views: View[] = [];
  for (let rho = 0; rho < rhoCount; rho++) {
    let u2 = outside;
    let u3 = outside;
    for (let i = 0, rest = rho; i < coordinates.length; i++, rest = Math.floor(rest / 3)) {
      if (rest % 3 >= 1) u2 |= bit(coordinates[i] as number);
      if (rest % 3 === 2) u3 |= bit(coordinates[i] as number);
    }
    views.push({ u2, u3 });
  }
  // Sites that accept each view (the client's own U2 and U3 checks).
  const acceptedBy = views.map((view) =>
    indices(honest).reduce((mask, site) => (acceptsShareSurvivors(model, site, view.u2) && acceptsMaskedSurvivors(model, site, view) ? mask | bit(site) : mask), 0),
  );

  // Events: b_u first, then s_sk_d for every honest d in R; each saturates at what is still missing.
  const sDealers = coordinates.filter((d) => !has(colluders, d));
  const need = [model.threshold - popcount((model.open[target] as number) & colluders), ...sDealers.map((d) => model.threshold - popcount((model.open[d] as number) & colluders))].map(
    (value) => Math.max(0, value),
  );
  if (model.threshold > FIELD_MASK || need.length * FIELD_BITS > 31) throw new Error(`the search packs ${need.length} counts of up to t = ${model.threshold} in 31 bits: too many`);
  const add = (a: number, b: number): number => {
    let sum = 0;
    for (let f = 0, shift = 0; f < need.length; f++, shift += FIELD_BITS) {
      sum |= Math.min(((a >> shift) & FIELD_MASK) + ((b >> shift) & FIELD_MASK), need[f] as number) << shift;
    }
    return sum;
  };
  // a >= b in every field: with a guard bit above each 3-bit field, subtracting b borrows from a
  // field's guard exactly when that field of a is smaller (SWAR comparison).
  let guards = 0;
  for (let f = 0; f < need.length; f++) guards |= 8 << (f * FIELD_BITS);
  const dominates = (a: number, b: number): boolean => (((a | guards) - b) & guards) === guards;
  /** Whether `value` joins a Pareto front (no kept option is at least as good); drops what it beats. */
  const admit = (front: Option[], value: number): boolean => {
    for (const kept of front) if (dominates(kept.value, value)) return false;
    let write = 0;
    for (const kept of front) if (!dominates(value, kept.value)) front[write++] = kept;
    front.length = write;
    return true;
  };
  const eventsOf = (holder: number, revealed: Revealed | undefined): number => {
    if (revealed === undefined) return 0;
    let value = has(revealed.selfMask, target) && has(relevant, holder) ? 1 : 0;
    sDealers.forEach((d, f) => {
      if (has(revealed.maskKey, d) && has(model.open[d] as number, holder)) value |= 1 << ((f + 1) * FIELD_BITS);
    });
    return value;
  };

  // Pareto-maximal outcomes of one member over every subset of the signers the coordinator could forward.
  const memberMemo = new Map<number, Option[]>();
  const memberOptions = (site: number, rho: number, targetMatches: boolean, eligible: number): Option[] => {
    const key = ((site * rhoCount + rho) * 2 + (targetMatches ? 1 : 0)) * (model.all + 1) + eligible;
    const cached = memberMemo.get(key);
    if (cached !== undefined) return cached;
    const view = views[rho] as View;
    const inU3 = (model.open[site] as number) & view.u3;
    const matches = targetMatches ? inU3 : inU3 & ~bit(target);
    const front: Option[] = [];
    const optional = eligible & ~bit(site);
    for (let subset = optional; ; subset = (subset - 1) & optional) {
      stats.decisions++;
      const signers = subset | bit(site);
      const value = eventsOf(site, revealOf(model, decide, site, view, signers, matches));
      if (admit(front, value)) front.push({ value, picks: { site, signers, next: undefined } });
      if (subset === 0) break;
    }
    memberMemo.set(key, front);
    return front;
  };

  // One class: its members all see R-view rho; u's digest matches theirs iff their U2 equals u's on R.
  const classMemo = new Map<number, Option[]>();
  const classOptions = (members: number, rho: number, targetMatches: boolean): Option[] => {
    const key = (members * rhoCount + rho) * 2 + (targetMatches ? 1 : 0);
    const cached = classMemo.get(key);
    if (cached !== undefined) return cached;
    stats.classViews++;
    const view = views[rho] as View;
    let front: Option[] = [{ value: 0 }];
    for (const site of indices(members)) {
      const eligible = bit(site) | ((model.open[site] as number) & view.u3 & (members | colluders));
      const next: Option[] = [];
      for (const x of front) {
        for (const y of memberOptions(site, rho, targetMatches, eligible)) {
          const pick = y.picks as Pick;
          const value = add(x.value, y.value);
          if (admit(next, value)) next.push({ value, picks: { site: pick.site, signers: pick.signers, next: x.picks } });
        }
      }
      front = next;
    }
    const options = front.map((option) => ({ ...option, rho, members }));
    classMemo.set(key, options);
    return options;
  };

  // Per class, its options grouped by the U2 (on R) its R-view shows: whether u's digest matches
  // depends only on that, so each class is evaluated once for every U2_u tried below.
  const groupMemo = new Map<number, Map<number, { match: Option[]; mismatch: Option[]; count: number }>>();
  const groupsOf = (members: number): Map<number, { match: Option[]; mismatch: Option[]; count: number }> => {
    let groups = groupMemo.get(members);
    if (groups === undefined) {
      groups = new Map();
      for (let rho = 0; rho < rhoCount; rho++) {
        if ((members & ~(acceptedBy[rho] as number)) !== 0) continue;
        const u2 = (views[rho] as View).u2 & relevant;
        let group = groups.get(u2);
        if (group === undefined) groups.set(u2, (group = { match: [], mismatch: [], count: 0 }));
        group.count++;
        for (const option of classOptions(members, rho, true)) if (admit(group.match, option.value)) group.match.push(option);
        if (!has(members, target)) for (const option of classOptions(members, rho, false)) if (admit(group.mismatch, option.value)) group.mismatch.push(option);
      }
      groupMemo.set(members, groups);
    }
    return groups;
  };

  const targetU2s = [...new Set(views.map((view) => view.u2 & relevant))].filter((u2) => acceptsShareSurvivors(model, target, u2 | outside));
  for (const targetU2 of targetU2s) {
    const classes = new Map<number, { front: Option[]; count: number }>();
    const classFront = (members: number): { front: Option[]; count: number } => {
      let entry = classes.get(members);
      if (entry === undefined) {
        const front: Option[] = [];
        let count = 0;
        for (const [u2, group] of groupsOf(members)) {
          // The target's own class shows it its own U2; any other class may show another U2.
          if (has(members, target) && u2 !== targetU2) continue;
          count += group.count;
          for (const option of u2 === targetU2 ? group.match : group.mismatch) if (admit(front, option.value)) front.push(option);
        }
        entry = { front, count };
        classes.set(members, entry);
      }
      return entry;
    };
    // F(rest) = Pareto front over every partition of `rest` into classes (the class of its lowest site first).
    const memo = new Map<number, { front: Option[]; count: number }>([[0, { front: [{ value: 0 }], count: 1 }]]);
    const partitions = (rest: number): { front: Option[]; count: number } => {
      const cached = memo.get(rest);
      if (cached !== undefined) return cached;
      const lowest = rest & -rest;
      const others = rest & ~lowest;
      const front: Option[] = [];
      let count = 0;
      for (let subset = others; ; subset = (subset - 1) & others) {
        const members = subset | lowest;
        const cls = classFront(members);
        if (cls.count > 0) {
          const tail = partitions(rest & ~members);
          count += cls.count * tail.count;
          for (const x of cls.front) {
            for (const y of tail.front) {
              const value = add(x.value, y.value);
              if (admit(front, value)) front.push({ ...x, value, rest: y });
            }
          }
        }
        if (subset === 0) break;
      }
      const entry = { front, count };
      memo.set(rest, entry);
      return entry;
    };
    const all = partitions(honest);
    stats.assignments += all.count;
    const masked = indices((model.open[target] as number) & targetU2);
    const field = (value: number, f: number): number => (value >> (f * FIELD_BITS)) & FIELD_MASK;
    const known = (value: number, f: number): boolean => field(value, f) >= (need[f] as number);
    const sKnown = (value: number, d: number): boolean => has(colluders, d) || known(value, sDealers.indexOf(d) + 1);
    const winner = all.front.find((option) => known(option.value, 0) && masked.every((v) => has(colluders, v) || sKnown(option.value, target) || sKnown(option.value, v)));
    if (winner !== undefined) return replay(model, decide, colluders, target, views, winner);
  }
  return undefined;
}

/** Rebuilds the joint assignment behind `winner` and evaluates it exactly. */
function replay(model: RevealModel, decide: DecideFn, colluders: number, target: number, views: readonly View[], winner: Option): Attack {
  const assigned = new Map<number, View>();
  const forwarded = new Map<number, number>();
  for (let option: Option | undefined = winner; option !== undefined; option = option.rest) {
    if (option.members === undefined || option.rho === undefined) continue;
    for (const site of indices(option.members)) assigned.set(site, views[option.rho] as View);
    for (let pick = option.picks; pick !== undefined; pick = pick.next) forwarded.set(pick.site, pick.signers);
  }
  const { reveals, exposed } = evaluateAssignment(model, decide, colluders, assigned, forwarded);
  return { target, colluders, views: assigned, forwarded, reveals, exposed };
}
