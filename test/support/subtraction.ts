/**
 * The subtraction attack of a lying coordinator, as a check (DESIGN.md "What a site checks for itself"):
 * SecAgg+ hides each update inside one aggregate, but two aggregates whose survivor sets differ by one
 * site give that site's contribution away by subtraction. Given every unmasked aggregate a coordinator
 * obtained and what each site really contributed, this says which single site a difference (or an
 * aggregate on its own) reveals.
 *
 * "Recovered" is strict enough to exclude chance and loose enough for fixed-point noise:
 * - update:  every slot of the difference equals the site's clip(w * delta) within the quantisation
 *            bound (below);
 * - weight:  the w slot equals the site's w = min(examples, W) / W within the bound (it gives the site's
 *            example count away);
 * - metrics: the correct-count and evaluation-example slots equal the site's exactly (counts travel
 *            unscaled) and the loss-sum slot within the bound.
 *
 * Quantisation bound (DESIGN.md step 4): a site sends stochastic_round(x * M / R) for a value x clipped
 * to [-R, R], so each contribution to a dequantised aggregate is off by less than R / M, M = floor((2^31
 * - 1) / |U|) of that round. A difference of aggregates A and B with nA and nB contributions is
 * therefore within R * (nA / M_A + nB / M_B) of the true difference of the clipped values.
 */
import { roundScale, roundSegments, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';

/** An unmasked aggregate as the coordinator holds it. */
export interface ObtainedAggregate {
  /** What the test calls it (round label), for messages. */
  readonly label: string;
  readonly config: RoundConfig;
  /** The dequantised aggregate (aggregate-codec.ts `values`): d + 4 slots. */
  readonly values: Float64Array;
  /** U3: whose quantised inputs it sums. */
  readonly survivors: readonly string[];
}

export interface SiteMetrics {
  /** Evaluation loss sum as the site reports it (clipped to L_max per example). */
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
}

/** What one site really put into one aggregate, or part of it: the truth a recovery is compared with. */
export interface SiteContribution {
  readonly siteId: string;
  /** Where the truth comes from (round label, model), for messages. */
  readonly source: string;
  /** clip(w * delta) slot by slot, with the clipping bounds of the round. */
  readonly weightedDelta?: Float64Array;
  readonly weight?: number;
  readonly metrics?: SiteMetrics;
}

export type RecoveredPart = 'update' | 'weight' | 'metrics';

export interface Recovery {
  readonly siteId: string;
  readonly part: RecoveredPart;
  /** "A - B" (or "A" alone) of aggregate labels. */
  readonly from: string;
  readonly truth: string;
}

/**
 * The site's contribution to the w * delta and w slots of a round (w = min(examples, W) / W,
 * update-vector.ts `updateWeight`): what its quantised input carries.
 */
export function updateContribution(siteId: string, source: string, config: RoundConfig, delta: Float32Array | Float64Array, weight: number): SiteContribution {
  const weightedDelta = new Float64Array(delta.length);
  let offset = 0;
  for (const segment of config.layout.parameterSegments) {
    for (let i = offset; i < offset + segment.length; i++) weightedDelta[i] = clip(weight * (delta[i] as number), segment.bound);
    offset += segment.length;
  }
  return { siteId, source, weightedDelta, weight };
}

/**
 * Every single-site contribution that one aggregate, or the difference of two (both orders), reveals.
 * Empty when the coordinator learnt nothing about any one site beyond sums of several.
 */
export function recoveredSites(aggregates: readonly ObtainedAggregate[], contributions: readonly SiteContribution[]): Recovery[] {
  const found: Recovery[] = [];
  const seen = new Set<string>();
  const candidates: { from: string; difference: Float64Array; bound: Float64Array }[] = [];
  for (const a of aggregates) {
    candidates.push({ from: a.label, ...difference(a, undefined) });
    for (const b of aggregates) {
      if (a === b || vectorLength(a.config) !== vectorLength(b.config)) continue;
      candidates.push({ from: `${a.label} - ${b.label}`, ...difference(a, b) });
    }
  }
  for (const candidate of candidates) {
    for (const truth of contributions) {
      for (const part of matches(candidate, truth)) {
        const key = `${truth.siteId}/${part}/${candidate.from}`;
        if (seen.has(key)) continue;
        seen.add(key);
        found.push({ siteId: truth.siteId, part, from: candidate.from, truth: truth.source });
      }
    }
  }
  return found;
}

/** a - b slot by slot, with each slot's bound (0 for the count slots, which travel unscaled). */
function difference(a: ObtainedAggregate, b: ObtainedAggregate | undefined): { difference: Float64Array; bound: Float64Array } {
  const length = a.values.length;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = (a.values[i] as number) - (b === undefined ? 0 : (b.values[i] as number));
  const bound = new Float64Array(length);
  for (const aggregate of b === undefined ? [a] : [a, b]) {
    const contributions = aggregate.survivors.length;
    const scale = roundScale(aggregate.config);
    let offset = 0;
    for (const segment of roundSegments(aggregate.config)) {
      if (segment.kind === 'scaled') {
        for (let i = offset; i < offset + segment.length; i++) bound[i] = (bound[i] as number) + (segment.bound * contributions) / scale;
      }
      offset += segment.length;
    }
  }
  // Float64 arithmetic on top of the fixed-point error: a relative hair, never a quantum.
  for (let i = 0; i < length; i++) bound[i] = (bound[i] as number) * (1 + 1e-9) + 1e-12;
  return { difference: out, bound };
}

function matches(candidate: { difference: Float64Array; bound: Float64Array }, truth: SiteContribution): RecoveredPart[] {
  const { difference: diff, bound } = candidate;
  const d = diff.length - 4;
  const parts: RecoveredPart[] = [];
  const delta = truth.weightedDelta;
  if (delta !== undefined && delta.length === d) {
    let within = true;
    let largest = 0;
    let loosest = 0;
    for (let i = 0; i < d && within; i++) {
      within = Math.abs((diff[i] as number) - (delta[i] as number)) <= (bound[i] as number);
      largest = Math.max(largest, Math.abs(delta[i] as number));
      loosest = Math.max(loosest, bound[i] as number);
    }
    // An all-but-zero update matches any difference of equal sums: that reveals nothing about the site.
    if (within && largest > 10 * loosest) parts.push('update');
  }
  const weightSlot = bound[d] as number;
  if (truth.weight !== undefined && truth.weight > 10 * weightSlot && Math.abs((diff[d] as number) - truth.weight) <= weightSlot) parts.push('weight');
  const metrics = truth.metrics;
  if (
    metrics !== undefined &&
    metrics.evalExamples > 0 &&
    Math.abs((diff[d + 1] as number) - metrics.evalLossSum) <= (bound[d + 1] as number) &&
    diff[d + 2] === metrics.evalCorrect &&
    diff[d + 3] === metrics.evalExamples
  ) {
    parts.push('metrics');
  }
  return parts;
}

function clip(value: number, bound: number): number {
  return Math.min(bound, Math.max(-bound, value));
}
