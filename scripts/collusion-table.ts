/**
 * The collusion table of docs/protocol.md: for a few (n, k, t = ceil(2(k+1)/3)), the probability that a
 * random colluding set of c sites breaks the threat-model condition of DESIGN.md for at least one
 * honest site u - some w in u's closed neighbourhood has at least min(2t - (k+1), k) colluding
 * neighbours - and the mean share of honest sites for which it breaks.
 *
 * Model: the colluders are fixed before the round, and the graph seed is unbiased (commit-reveal of
 * every r_u, DESIGN.md step 2), so the ring order is a uniformly random permutation independent of the
 * colluders. Every ring with k/2 links on each side is the same circulant graph, so a sample is a
 * uniformly random c-subset of ring positions. The complete graph (k >= n - 1) is deterministic: the
 * condition breaks exactly when c >= min(2t - n, n - 1).
 *
 * Usage: npx tsx scripts/collusion-table.ts [--samples 20000] [--seed 1]   (prints a Markdown table)
 */

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
  { n: 500, k: 10 },
  { n: 500, k: 20 },
  { n: 500, k: 48 },
];
const FRACTIONS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4] as const;

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

function defaultThreshold(k: number): number {
  return Math.ceil((2 * (k + 1)) / 3);
}

/** min(2t - (k+1), k) with k the effective degree. */
function collusionBound(n: number, k: number): number {
  const degree = Math.min(k, n - 1);
  return Math.min(2 * defaultThreshold(degree) - (degree + 1), degree);
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
  const bound = collusionBound(n, k);
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

/** A share as a percentage with two significant digits. */
function formatShare(share: number): string {
  return `${Number((share * 100).toPrecision(2))}%`;
}

function main(): void {
  const samples = option('samples', 20_000);
  const seed = option('seed', 1);
  const random = generator(seed);
  const header = ['n', 'k', 't', 'bound', ...FRACTIONS.map((f) => `c = ${Math.round(f * 100)}% n`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const { n, k } of ROWS) {
    const degree = Math.min(k, n - 1);
    const complete = k >= n - 1;
    const bound = collusionBound(n, k);
    const cells = FRACTIONS.map((fraction) => {
      const colluders = Math.max(1, Math.round(fraction * n));
      if (complete) return `${colluders}: ${colluders >= bound ? '1' : '0'}`;
      const { probability, meanBroken } = sampleRing(n, degree, colluders, samples, random);
      return `${colluders}: ${formatProbability(probability)} (${formatShare(meanBroken)})`;
    });
    lines.push(`| ${n} | ${complete ? `${k} (complete)` : k} | ${defaultThreshold(degree)} | ${bound} | ${cells.join(' | ')} |`);
  }
  console.log(
    `Samples per ring cell: ${samples} (seed ${seed}); a 0 means no sample broke the condition (95% upper bound ${(3 / samples).toExponential(1)}). ` +
      'Cell: colluders c: P(condition broken for some honest site) (mean share of honest sites for which it breaks).',
  );
  console.log(lines.join('\n'));
}

main();
