/**
 * The collusion tables of docs/protocol.md. For a few (n, k) with the default t: the worst case - the
 * colluders a round tolerates wherever they sit, min(2t - (k+1), k) - 1 - and whether a site with the
 * default policy accepts the round; then, for a colluding set of c sites placed at random, the
 * probability that the threat-model condition of DESIGN.md breaks for at least one honest site u (some
 * w in u's closed neighbourhood has at least min(2t - (k+1), k) colluding neighbours) and the mean share
 * of honest sites for which it breaks; and that probability compounded over R rounds with fresh graphs,
 * 1 - (1 - p)^R.
 *
 * Model of the random columns: the colluders are fixed before the round, and the graph seed is unbiased
 * (commit-reveal of every r_u, DESIGN.md step 2), so the ring order is a uniformly random permutation
 * independent of the colluders. Every ring with k/2 links on each side is the same circulant graph, so a
 * sample is a uniformly random c-subset of ring positions. The complete graph (k >= n - 1) is
 * deterministic: the condition breaks exactly when c >= min(2t - n, n - 1). A coordinator that aborts
 * rounds until the graph suits it, or picks U, is not random: for it only the worst-case column holds.
 *
 * Usage: npx tsx scripts/collusion-table.ts [--samples 20000] [--seed 1]   (prints Markdown tables)
 */
import { collusionBound, toleratedColluders } from '../crypto/secagg/margin.js';
import { defaultThreshold } from '../crypto/secagg/config.js';
import { collusionMarginShortfall } from '../crypto/secagg/policy.js';

interface Row {
  readonly n: number;
  readonly k: number;
}

const ROWS: readonly Row[] = [
  { n: 50, k: 10 },
  { n: 50, k: 20 },
  { n: 50, k: 49 },
  { n: 100, k: 10 },
  { n: 100, k: 20 },
  { n: 100, k: 48 },
  { n: 100, k: 99 },
  { n: 500, k: 10 },
  { n: 500, k: 20 },
  { n: 500, k: 40 },
  { n: 500, k: 48 },
  { n: 1000, k: 20 },
  { n: 1000, k: 40 },
];
const FRACTIONS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4] as const;
/** Federation lifetimes, in rounds with fresh graphs, for the compounded table. */
const LIFETIMES = [100, 500] as const;

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${String(process.argv[index + 1])}`);
  return value;
}

/** mulberry32: a small seeded generator, so the table is reproducible (not for anything secret). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** B = min(2t - (k+1), k) at the default t, with k the effective degree. */
function roundBound(n: number, k: number): number {
  const degree = Math.min(k, n - 1);
  return collusionBound(degree, defaultThreshold(degree));
}

/**
 * For one placement of colluders on the ring (colluding[i] = 1), the number of honest sites u for which
 * some w in N[u] has >= bound colluding neighbours. Window sums over the ring keep it O(n).
 */
function brokenHonestSites(colluding: Uint8Array, half: number, bound: number, scratch: { count: Int32Array; bad: Uint8Array }): number {
  const n = colluding.length;
  const window = (values: ArrayLike<number>, centre: number): number => {
    let sum = 0;
    for (let d = -half; d <= half; d++) sum += values[(centre + d + n) % n] as number;
    return sum;
  };
  // count[w] = colluders among the 2 * half ring neighbours of w, by a running window sum.
  let running = window(colluding, 0);
  for (let w = 0; w < n; w++) {
    if (w > 0) running += (colluding[(w + half) % n] as number) - (colluding[(w - half - 1 + n) % n] as number);
    scratch.count[w] = running - (colluding[w] as number);
    scratch.bad[w] = (scratch.count[w] as number) >= bound ? 1 : 0;
  }
  let broken = 0;
  let nearBad = window(scratch.bad, 0);
  for (let u = 0; u < n; u++) {
    if (u > 0) nearBad += (scratch.bad[(u + half) % n] as number) - (scratch.bad[(u - half - 1 + n) % n] as number);
    if (colluding[u] === 0 && nearBad > 0) broken++;
  }
  return broken;
}

function sampleRing(n: number, k: number, colluders: number, samples: number, random: () => number): { probability: number; meanBroken: number } {
  const bound = roundBound(n, k);
  const positions = Int32Array.from({ length: n }, (_, i) => i);
  const colluding = new Uint8Array(n);
  const scratch = { count: new Int32Array(n), bad: new Uint8Array(n) };
  let hits = 0;
  let brokenTotal = 0;
  for (let s = 0; s < samples; s++) {
    colluding.fill(0);
    // Partial Fisher-Yates: the first `colluders` positions form a uniform random subset.
    for (let i = 0; i < colluders; i++) {
      const j = i + Math.floor(random() * (n - i));
      const swap = positions[i] as number;
      positions[i] = positions[j] as number;
      positions[j] = swap;
      colluding[positions[i] as number] = 1;
    }
    const broken = brokenHonestSites(colluding, k / 2, bound, scratch);
    if (broken > 0) hits++;
    brokenTotal += broken / (n - colluders);
  }
  return { probability: hits / samples, meanBroken: brokenTotal / samples };
}

function formatProbability(p: number): string {
  if (p === 0 || p === 1) return String(p);
  if (p < 0.01) return p.toExponential(1);
  return p > 0.999 ? '> 0.999' : p.toFixed(3);
}

/** An upper bound, rounded up to two significant digits. */
function formatBound(p: number): string {
  if (p === 0 || p >= 0.01) return formatProbability(p);
  const exponent = Math.floor(Math.log10(p));
  const mantissa = Math.ceil((p / 10 ** exponent) * 10) / 10;
  return `${mantissa.toFixed(1)}e${exponent}`;
}

/** A share as a percentage with two significant digits. */
function formatShare(share: number): string {
  return `${Number((share * 100).toPrecision(2))}%`;
}

const logFactorials: number[] = [0];
function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++) logFactorials.push((logFactorials[i - 1] as number) + Math.log(i));
  return logFactorials[n] as number;
}

function logChoose(n: number, r: number): number {
  return logFactorial(n) - logFactorial(r) - logFactorial(n - r);
}

/**
 * Union bound on the per-round probability for a ring: the condition breaks only if some w has at least
 * B colluders among its k neighbours, a hypergeometric draw of k of the other n - 1 positions holding at
 * most c colluders, so p <= n * P[Hyp(n - 1, c, k) >= B]. Rigorous where sampling sees nothing.
 */
function unionBound(n: number, k: number, colluders: number, bound: number): number {
  let tail = 0;
  for (let x = bound; x <= Math.min(k, colluders); x++) {
    tail += Math.exp(logChoose(colluders, x) + logChoose(n - 1 - colluders, k - x) - logChoose(n - 1, k));
  }
  return Math.min(1, n * tail);
}

/** 1 - (1 - p)^R, computed without losing small p. */
function compounded(p: number, rounds: number): number {
  return -Math.expm1(rounds * Math.log1p(-p));
}

interface Cell {
  readonly colluders: number;
  /** Per-round probability (0: no sample broke the condition). */
  readonly probability: number;
  readonly meanBroken: number | undefined;
  /** When no sample broke it: the smaller of the union bound and the 95% sampling bound 3 / samples. */
  readonly upperBound: number | undefined;
}

function main(): void {
  const samples = option('samples', 20_000);
  const seed = option('seed', 1);
  const random = generator(seed);
  const upperBound = 3 / samples;
  const rows = ROWS.map(({ n, k }) => {
    const degree = Math.min(k, n - 1);
    const complete = k >= n - 1;
    const t = defaultThreshold(degree);
    const bound = roundBound(n, k);
    const cells: Cell[] = FRACTIONS.map((fraction) => {
      const colluders = Math.max(1, Math.round(fraction * n));
      if (complete) return { colluders, probability: colluders >= bound ? 1 : 0, meanBroken: undefined, upperBound: undefined };
      const { probability, meanBroken } = sampleRing(n, degree, colluders, samples, random);
      return { colluders, probability, meanBroken, upperBound: probability === 0 ? Math.min(upperBound, unionBound(n, degree, colluders, bound)) : undefined };
    });
    const shortfall = collusionMarginShortfall(n, degree, t);
    return { n, k, degree, complete, t, bound, tolerated: toleratedColluders(degree, t), policy: shortfall === undefined ? 'accepted' : `refused (\`${shortfall.reason}\`)`, cells };
  });
  const fractionHeaders = FRACTIONS.map((f) => `c = ${Math.round(f * 100)}% n`);
  const table = (header: string[], body: string[][]): string =>
    [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...body.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
  const rowLabel = (row: (typeof rows)[number]): string[] => [String(row.n), row.complete ? `${row.k} (complete)` : String(row.k), String(row.t)];

  console.log('Worst case (the coordinator places the colluders) and the default site policy:\n');
  console.log(table(['n', 'k', 't', 'B = min(2t - (k+1), k)', 'tolerated colluders B - 1', 'default site policy'], rows.map((row) => [...rowLabel(row), String(row.bound), String(row.tolerated), row.policy])));
  console.log(
    `\nRandom placement, one round. Samples per ring cell: ${samples} (seed ${seed}). ` +
      'Cell: colluders c: P(condition broken for some honest site) (mean share of honest sites for which it breaks); ' +
      `"< x" where no sample broke it, x the smaller of the union bound n * P[Hyp(n - 1, c, k) >= B] and the 95% sampling bound ${upperBound.toExponential(1)}; ` +
      '0 where c < B (exact).\n',
  );
  console.log(
    table(
      ['n', 'k', 't', ...fractionHeaders],
      rows.map((row) => [
        ...rowLabel(row),
        ...row.cells.map((cell) => {
          if (cell.meanBroken === undefined) return `${cell.colluders}: ${cell.probability}`;
          // A union bound of 0 means fewer than B colluders in all: the condition cannot break.
          if (cell.upperBound === 0) return `${cell.colluders}: 0`;
          if (cell.upperBound !== undefined) return `${cell.colluders}: < ${formatBound(cell.upperBound)}`;
          return `${cell.colluders}: ${formatProbability(cell.probability)} (${formatShare(cell.meanBroken)})`;
        }),
      ]),
    ),
  );
  console.log(
    `\nRandom placement over a lifetime of R rounds with fresh graphs: 1 - (1 - p)^R, cell "R = ${LIFETIMES.join(' / R = ')}"; ` +
      '"< x" compounds the per-round bound.\n',
  );
  console.log(
    table(
      ['n', 'k', 't', ...fractionHeaders],
      rows.map((row) => [
        ...rowLabel(row),
        ...row.cells.map((cell) => {
          if (row.complete || cell.upperBound === 0) return `${cell.colluders}: ${cell.probability}`;
          const values = LIFETIMES.map((rounds) =>
            cell.upperBound !== undefined ? `< ${formatBound(compounded(cell.upperBound, rounds))}` : formatProbability(compounded(cell.probability, rounds)),
          );
          return `${cell.colluders}: ${values.join(' / ')}`;
        }),
      ]),
    ),
  );
}

main();
