/**
 * The Shamir dealer's randomness, measured: over many dealings of a FIXED secret, what a holder (or a
 * coalition of t - 1 holders) sees must not depend on the secret (Shamir 1979; DESIGN.md step 3). The
 * reconstruction tests in shamir.test.ts count the completions of t - 1 shares, which only exercises
 * interpolation: a dealer with fixed coefficients (one share gives the secret away) passes them. These
 * tests deal with the production randomness (splitSecret's default, the OS CSPRNG) and check:
 *  - every single share value (x, symbol) is uniform over GF(2^16) (high and low byte histograms);
 *  - every pair of share values - two holders, or two symbols of one holder - is jointly uniform
 *    (a 16 x 16 histogram of their high nibbles), so no relation between shares shows;
 *  - the best guess of t - 1 holders, interpolating their shares at 0, is uniformly wrong;
 *  - the t - 1 shares of two dealings never repeat (an entropy check: a dealer with a small seed repeats);
 * for two different secrets, so both give the same (uniform) distributions. Then the same checks run
 * against mutant dealers (fixed coefficients, a missing top coefficient, coefficients shared by all
 * symbols) and must fail: the tests have power.
 *
 * Tolerances are fixed and seed-independent: each bucket count must lie within mean +- d, with d from
 * Bernstein's inequality so that one bucket strays with probability below BUCKET_FALSE_ALARM; a union
 * bound over every bucket checked (and the collision bound) keeps the chance that an honest dealer fails
 * a run below 1e-6, computed in the first test.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { combineShares, splitSecret, type Share } from '../../../crypto/index.js';

/** A dealer: splits `secret` with threshold `t` at the points `xs` (splitSecret's signature without randomness). */
type Dealer = (secret: Uint8Array, threshold: number, xs: readonly number[]) => Share[];

const THRESHOLD = 3;
/** Evaluation points: the small ones, one in the middle, the largest. */
const XS = [1, 2, 3, 0x8000, 0xffff] as const;
/** Two symbols, so relations between the symbols of one share are visible too. */
const SECRET_BYTES = 4;
const SYMBOLS = SECRET_BYTES / 2;
const DEALINGS = 1 << 16;
const BUCKETS = 256;
/** Probability that one bucket count of an honest dealer falls outside its tolerance (bounded below). */
const BUCKET_FALSE_ALARM = 1e-11;

/** The honest dealer exactly as production calls it: default randomness. */
const honestDealer: Dealer = (secret, threshold, xs) => splitSecret(secret, threshold, xs);

/** The random(n) result a mutant feeds splitSecret, laid out as coefficient k (1..t-1) of symbol j. */
function coefficientBytes(threshold: number, symbols: number, coefficient: (k: number, j: number) => number): (n: number) => Uint8Array {
  return (n) => {
    const bytes = new Uint8Array(n);
    for (let k = 1; k < threshold; k++) {
      for (let j = 0; j < symbols; j++) {
        const value = coefficient(k, j);
        const at = 2 * ((k - 1) * symbols + j);
        bytes[at] = value >>> 8;
        bytes[at + 1] = value & 0xff;
      }
    }
    return bytes;
  };
}

function randomSymbol(): number {
  return randomBytes(2).readUInt16BE(0);
}

const mutants: readonly { name: string; dealer: Dealer; caughtBy: string }[] = [
  {
    // The tracker's mutation: a fixed pattern instead of random coefficients; one share gives the secret away.
    name: 'fixed-coefficient (all coefficients 1)',
    dealer: (secret, t, xs) => splitSecret(secret, t, xs, coefficientBytes(t, secret.length / 2, () => 1)),
    caughtBy: 'share value',
  },
  {
    // Degree t - 2: t - 1 holders interpolate the secret exactly.
    name: 'top-coefficient-zero',
    dealer: (secret, t, xs) => splitSecret(secret, t, xs, coefficientBytes(t, secret.length / 2, (k) => (k === t - 1 ? 0 : randomSymbol()))),
    caughtBy: 'guess of t - 1 holders',
  },
  {
    // Random coefficients, but the same ones for every symbol: y_0 XOR y_1 of any share is s_0 XOR s_1.
    name: 'coefficients-shared-by-symbols',
    dealer: (secret, t, xs) => {
      const perDegree = Array.from({ length: t }, () => randomSymbol());
      return splitSecret(secret, t, xs, coefficientBytes(t, secret.length / 2, (k) => perDegree[k] as number));
    },
    caughtBy: 'pair of share values',
  },
];

/**
 * Half-width d of the acceptance band around the mean of a Binomial(n, p) count: Bernstein's inequality
 * P(|X - np| >= d) <= 2 exp(-d^2 / (2 (np(1 - p) + d / 3))), solved for the right side = `falseAlarm`.
 */
function bernsteinTolerance(n: number, p: number, falseAlarm: number): number {
  const variance = n * p * (1 - p);
  const log = Math.log(2 / falseAlarm);
  return log / 3 + Math.sqrt((log * log) / 9 + 2 * log * variance);
}

const TOLERANCE = bernsteinTolerance(DEALINGS, 1 / BUCKETS, BUCKET_FALSE_ALARM);

/** All k-subsets of [0, n). */
function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  const out: number[][] = [];
  for (let last = k - 1; last < n; last++) for (const rest of subsets(last, k - 1)) out.push([...rest, last]);
  return out;
}

/** Coordinates of one dealing: every (share index, symbol), in that order. */
const COORDINATES = XS.flatMap((_, share) => Array.from({ length: SYMBOLS }, (_unused, symbol) => ({ share, symbol })));
const COORDINATE_PAIRS = subsets(COORDINATES.length, 2);
const HOLDER_SETS = subsets(XS.length, THRESHOLD - 1);

interface Histogram {
  readonly name: string;
  readonly counts: Uint32Array;
}

function histogram(name: string): Histogram {
  return { name, counts: new Uint32Array(BUCKETS) };
}

/** Histograms (and the collision count) of one secret under one dealer. */
interface DealerStatistics {
  readonly histograms: readonly Histogram[];
  /** Dealings whose shares at XS[0] and XS[1] (every symbol) equal an earlier dealing's. */
  readonly repeats: number;
}

function symbolOf(share: Share, symbol: number): number {
  return ((share.y[2 * symbol] as number) << 8) | (share.y[2 * symbol + 1] as number);
}

function collect(dealer: Dealer, secret: Uint8Array): DealerStatistics {
  const coordinate = COORDINATES.map(({ share, symbol }) => ({
    high: histogram(`share value x=${XS[share]} symbol ${symbol}, high byte`),
    low: histogram(`share value x=${XS[share]} symbol ${symbol}, low byte`),
  }));
  const pairs = COORDINATE_PAIRS.map(([a, b]) => {
    const first = COORDINATES[a as number] as { share: number; symbol: number };
    const second = COORDINATES[b as number] as { share: number; symbol: number };
    return histogram(`pair of share values (x=${XS[first.share]} symbol ${first.symbol}, x=${XS[second.share]} symbol ${second.symbol}), high nibbles`);
  });
  const guesses = HOLDER_SETS.flatMap((holders) =>
    Array.from({ length: SYMBOLS }, (_, symbol) => ({
      high: histogram(`guess of t - 1 holders x=${holders.map((index) => XS[index]).join(',')} symbol ${symbol}: (interpolation at 0) XOR secret, high byte`),
      low: histogram(`guess of t - 1 holders x=${holders.map((index) => XS[index]).join(',')} symbol ${symbol}: (interpolation at 0) XOR secret, low byte`),
    })),
  );
  const seen = new Set<string>();
  let repeats = 0;
  const values = new Uint16Array(COORDINATES.length);
  for (let dealing = 0; dealing < DEALINGS; dealing++) {
    const shares = dealer(secret, THRESHOLD, XS);
    for (const [index, { share, symbol }] of COORDINATES.entries()) {
      const value = symbolOf(shares[share] as Share, symbol);
      values[index] = value;
      const bins = coordinate[index] as { high: Histogram; low: Histogram };
      bins.high.counts[value >>> 8]! += 1;
      bins.low.counts[value & 0xff]! += 1;
    }
    for (const [index, [a, b]] of COORDINATE_PAIRS.entries()) {
      const cell = (((values[a as number] as number) >>> 12) << 4) | ((values[b as number] as number) >>> 12);
      (pairs[index] as Histogram).counts[cell]! += 1;
    }
    for (const [index, holders] of HOLDER_SETS.entries()) {
      const guess = combineShares(holders.map((holder) => shares[holder] as Share), THRESHOLD - 1, SECRET_BYTES);
      for (let symbol = 0; symbol < SYMBOLS; symbol++) {
        const error = (((guess[2 * symbol] as number) ^ (secret[2 * symbol] as number)) << 8) | ((guess[2 * symbol + 1] as number) ^ (secret[2 * symbol + 1] as number));
        const bins = guesses[index * SYMBOLS + symbol] as { high: Histogram; low: Histogram };
        bins.high.counts[error >>> 8]! += 1;
        bins.low.counts[error & 0xff]! += 1;
      }
    }
    const held = Buffer.concat([(shares[0] as Share).y, (shares[1] as Share).y]).toString('hex');
    if (seen.has(held)) repeats += 1;
    else seen.add(held);
  }
  return {
    histograms: [...coordinate.flatMap(({ high, low }) => [high, low]), ...pairs, ...guesses.flatMap(({ high, low }) => [high, low])],
    repeats,
  };
}

/** One line per histogram with a bucket outside mean +- TOLERANCE, and one for repeated shares. */
function findings(statistics: DealerStatistics): string[] {
  const mean = DEALINGS / BUCKETS;
  const out: string[] = [];
  for (const { name, counts } of statistics.histograms) {
    let worst = 0;
    for (let bucket = 1; bucket < BUCKETS; bucket++) {
      if (Math.abs((counts[bucket] as number) - mean) > Math.abs((counts[worst] as number) - mean)) worst = bucket;
    }
    const count = counts[worst] as number;
    if (Math.abs(count - mean) > TOLERANCE) out.push(`${name}: bucket ${worst} holds ${count}, expected ${mean} +- ${TOLERANCE.toFixed(1)}`);
  }
  if (statistics.repeats > 0) out.push(`t - 1 shares: ${statistics.repeats} of ${DEALINGS} dealings repeat an earlier dealing's shares at x=${XS[0]},${XS[1]}`);
  return out;
}

const HISTOGRAMS_PER_SECRET = 2 * COORDINATES.length + COORDINATE_PAIRS.length + 2 * HOLDER_SETS.length * SYMBOLS;
/** Two held shares of every symbol: 16 bits each, uniform over 2^(16 * 2 * SYMBOLS) values for an honest dealer. */
const HELD_BITS = 16 * 2 * SYMBOLS;
const SECRETS = [Uint8Array.of(0, 0, 0, 0), Uint8Array.of(0xa7, 0x5c, 0xff, 0x01)] as const;

describe('Shamir dealer: what t - 1 holders see does not depend on the secret', () => {
  it('an honest dealer fails this file with probability below 1e-6 (union bound over every check)', () => {
    const buckets = SECRETS.length * HISTOGRAMS_PER_SECRET * BUCKETS;
    // Repeats: by Markov, P(any repeat) <= E[repeated pairs] = C(DEALINGS, 2) / 2^HELD_BITS, per secret.
    const repeatBound = (SECRETS.length * (DEALINGS * (DEALINGS - 1))) / 2 / 2 ** HELD_BITS;
    const falseFailure = buckets * BUCKET_FALSE_ALARM + repeatBound;
    expect(falseFailure).toBeLessThan(1e-6);
    // The band is still narrow: a bucket that doubles or empties is far outside it.
    expect(TOLERANCE).toBeLessThan(DEALINGS / BUCKETS / 2);
  });

  it.each(SECRETS.map((secret) => [Buffer.from(secret).toString('hex'), secret] as const))(
    'single share values, pairs of share values and the guess of t - 1 holders are uniform for secret %s',
    (_hex, secret) => {
      expect(findings(collect(honestDealer, secret))).toEqual([]);
    },
  );

  it.each(mutants.map((mutant) => [mutant.name, mutant] as const))('has power: a %s dealer fails', (_name, mutant) => {
    const found = findings(collect(mutant.dealer, SECRETS[1]));
    expect(found.some((line) => line.startsWith(mutant.caughtBy)), found.join('\n')).toBe(true);
  });
});
