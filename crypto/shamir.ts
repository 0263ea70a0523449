/**
 * Shamir secret sharing (Shamir 1979) over GF(2^16), used by SecAgg to split each site's self-mask seed
 * b and mask secret key s_sk among its neighbours (Bonawitz et al. 2017, section 4, round 1; DESIGN.md
 * step 3). A 16-bit field allows up to 65,535 distinct nonzero evaluation points, so any federation
 * size fits. A secret of m bytes is ceil(m / 2) big-endian 16-bit symbols (an odd last byte is padded
 * with a zero low byte); each symbol is shared with its own random polynomial of degree t - 1, and a
 * share is the evaluation of all of them at one point x: y = 2 * ceil(m / 2) bytes.
 */
import { randomBytes } from 'node:crypto';
import { assertBytes, assertInteger } from './bytes.js';
import { CryptoError, describeValue, invalidArgument } from './errors.js';

export interface Share {
  /** Evaluation point, 1..65535 (0 would be the secret itself). */
  x: number;
  /** The evaluations of every symbol's polynomial at x, 2 bytes per symbol, big-endian. */
  y: Uint8Array;
}

export const MAX_SHARES = 0xffff;
const ORDER = 0xffff; // size of the multiplicative group of GF(2^16)

/**
 * x^16 + x^12 + x^3 + x + 1, a primitive polynomial, so x (= 2) generates the multiplicative group and
 * log/exp tables cover every nonzero element (the table construction below checks this).
 */
const PRIMITIVE_POLYNOMIAL = 0x1100b;

/** EXP[i] = 2^i for i in [0, 2 * 65535), doubled so products need no reduction modulo 65535. */
const EXP = new Uint16Array(2 * ORDER);
/** LOG[a] = i with 2^i = a, for a != 0. */
const LOG = new Uint16Array(ORDER + 1);
{
  let value = 1;
  for (let i = 0; i < ORDER; i++) {
    if (i > 0 && value === 1) throw new CryptoError('INTERNAL', 'SHAMIR_FIELD', 'GF(2^16) polynomial is not primitive');
    EXP[i] = value;
    EXP[i + ORDER] = value;
    LOG[value] = i;
    value <<= 1;
    if (value & 0x10000) value ^= PRIMITIVE_POLYNOMIAL;
  }
}

/** Number of 16-bit symbols and of y bytes for a secret of `secretLength` bytes. */
export function shareValueLength(secretLength: number): number {
  return 2 * Math.ceil(secretLength / 2);
}

function checkThreshold(threshold: number): void {
  assertInteger(threshold, 'threshold', 1, MAX_SHARES);
}

function checkX(x: unknown, name: string): asserts x is number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > MAX_SHARES) {
    throw invalidArgument('INVALID_SHARE_X', `${name} must be an integer in [1, 65535], got ${describeValue(x)}`);
  }
}

/**
 * Splits `secret` into one share per evaluation point of `xs` (in that order) so that any `threshold`
 * of them reconstruct it and fewer reveal nothing. `random(n)` supplies n uniformly random bytes for
 * the coefficients (defaults to the operating system's CSPRNG; tests inject a deterministic one).
 */
export function splitSecret(
  secret: Uint8Array,
  threshold: number,
  xs: readonly number[],
  random: (n: number) => Uint8Array = randomBytes,
): Share[] {
  assertBytes(secret, 'secret');
  checkThreshold(threshold);
  if (!Array.isArray(xs)) throw invalidArgument('INVALID_SHARE_X', `xs must be an array of evaluation points, got ${describeValue(xs)}`);
  if (xs.length < threshold) {
    throw invalidArgument('NOT_ENOUGH_SHARES', `xs must hold at least threshold = ${threshold} points, got ${xs.length}`);
  }
  const seen = new Set<number>();
  for (const [index, x] of xs.entries()) {
    checkX(x, `xs[${index}]`);
    if (seen.has(x)) throw invalidArgument('DUPLICATE_SHARE_X', `xs[${index}] = ${x} appears twice, expected distinct points`);
    seen.add(x);
  }
  const symbols = shareValueLength(secret.length) / 2;
  // coefficients[k * symbols + j]: coefficient of x^k of symbol j's polynomial; k = 0 is the secret.
  const coefficients = new Uint16Array(threshold * symbols);
  for (let j = 0; j < symbols; j++) coefficients[j] = ((secret[2 * j] as number) << 8) | (secret[2 * j + 1] ?? 0);
  const randomLength = 2 * (threshold - 1) * symbols;
  if (randomLength > 0) {
    const bytes = random(randomLength);
    assertBytes(bytes, 'random(n) result', randomLength);
    for (let i = 0; i < randomLength / 2; i++) coefficients[symbols + i] = ((bytes[2 * i] as number) << 8) | (bytes[2 * i + 1] as number);
    bytes.fill(0);
  }
  const shares = xs.map((x) => {
    const y = new Uint8Array(2 * symbols);
    const logX = LOG[x] as number;
    for (let j = 0; j < symbols; j++) {
      // Horner's rule from the top coefficient down: value = value * x + c_k.
      let value = 0;
      for (let k = threshold - 1; k >= 0; k--) {
        value = (value === 0 ? 0 : (EXP[(LOG[value] as number) + logX] as number)) ^ (coefficients[k * symbols + j] as number);
      }
      y[2 * j] = value >>> 8;
      y[2 * j + 1] = value & 0xff;
    }
    return { x, y };
  });
  coefficients.fill(0);
  return shares;
}

/** Checks structure: integer x in range, y of the right length, no x twice. */
function checkShares(shares: readonly Share[], threshold: number, secretLength: number): void {
  checkThreshold(threshold);
  assertInteger(secretLength, 'secretLength', 0, 2 ** 31 - 1);
  if (!Array.isArray(shares)) throw invalidArgument('INVALID_SHARE', `shares must be an array, got ${describeValue(shares)}`);
  if (shares.length < threshold) {
    throw invalidArgument('NOT_ENOUGH_SHARES', `need threshold = ${threshold} shares to reconstruct, got ${shares.length}`);
  }
  const valueLength = shareValueLength(secretLength);
  const seen = new Set<number>();
  for (const [index, share] of shares.entries()) {
    if (typeof share !== 'object' || share === null) throw invalidArgument('INVALID_SHARE', `shares[${index}] must be { x, y }, got ${describeValue(share)}`);
    checkX(share.x, `shares[${index}].x`);
    assertBytes(share.y, `shares[${index}].y`, valueLength);
    if (seen.has(share.x)) throw invalidArgument('DUPLICATE_SHARE_X', `shares[${index}].x = ${share.x} appears twice, expected distinct points`);
    seen.add(share.x);
  }
}

/**
 * log of the Lagrange basis polynomials of the points `subset` evaluated at `at`:
 * l_i(at) = prod_{j != i} (at - x_j) / (x_i - x_j); subtraction is XOR in characteristic 2.
 * `at` must not be one of the points. Writes into `out` (one entry per subset element).
 */
function lagrangeLogs(shares: readonly Share[], subset: ArrayLike<number>, at: number, out: Uint32Array): void {
  const t = subset.length;
  for (let a = 0; a < t; a++) {
    const xi = (shares[subset[a] as number] as Share).x;
    let logNumerator = 0;
    let logDenominator = 0;
    for (let b = 0; b < t; b++) {
      if (b === a) continue;
      const xj = (shares[subset[b] as number] as Share).x;
      logNumerator += LOG[at ^ xj] as number;
      logDenominator += LOG[xi ^ xj] as number;
    }
    out[a] = (((logNumerator - logDenominator) % ORDER) + ORDER) % ORDER;
  }
}

/** sum_i l_i * y_i symbol by symbol into `out` (the polynomials' values at the point of `logs`). */
function interpolate(shares: readonly Share[], subset: ArrayLike<number>, logs: Uint32Array, out: Uint8Array): void {
  out.fill(0);
  for (let a = 0; a < subset.length; a++) {
    const y = (shares[subset[a] as number] as Share).y;
    const logL = logs[a] as number;
    for (let p = 0; p < out.length; p += 2) {
      const value = ((y[p] as number) << 8) | (y[p + 1] as number);
      if (value === 0) continue;
      const product = EXP[(LOG[value] as number) + logL] as number;
      out[p] = (out[p] as number) ^ (product >>> 8);
      out[p + 1] = (out[p + 1] as number) ^ (product & 0xff);
    }
  }
}

function recoverFromSubset(shares: readonly Share[], subset: ArrayLike<number>, logs: Uint32Array, value: Uint8Array, secretLength: number): Uint8Array {
  lagrangeLogs(shares, subset, 0, logs);
  interpolate(shares, subset, logs, value);
  return value.slice(0, secretLength);
}

/**
 * Reconstructs the secret from exactly the first `threshold` shares (Lagrange interpolation at 0).
 * Further shares are checked for structure but not used: a wrong share yields a wrong secret, which
 * callers detect with `recoverWithCheck`.
 */
export function combineShares(shares: readonly Share[], threshold: number, secretLength: number): Uint8Array {
  checkShares(shares, threshold, secretLength);
  const subset = Uint32Array.from({ length: threshold }, (_, i) => i);
  const value = new Uint8Array(shareValueLength(secretLength));
  try {
    return recoverFromSubset(shares, subset, new Uint32Array(threshold), value, secretLength);
  } finally {
    value.fill(0);
  }
}

export interface RecoveryOptions {
  /** Most t-subsets to try before giving up. @default 50_000 */
  maxSubsets?: number;
}

/**
 * Robust reconstruction (DESIGN.md step 6): tries t-subsets until `isCorrect` accepts the secret (s_sk
 * against the signed s_pk, b against the committed H(b)), then names every share that is not on the
 * accepted polynomial, so the coordinator can blame the (dealer, holder) pair. Subsets are visited in
 * order of their largest index (every t-subset of n exactly once): first the first t, then those that
 * swap one of them for share t + 1, and so on, so a few bad shares among many are passed quickly.
 *
 * Colluding holders can craft shares on a different polynomial with the same constant term (two
 * polynomials of degree t - 1 through (0, secret) share at most t - 2 other points), which would blame
 * honest holders. So the accepted polynomial is the one with the most shares on it: once a polynomial
 * with support s passes, any other passing polynomial has support at most n - s + t - 2, and the search
 * stops as soon as 2s > n + t - 2 makes the current one the unique maximum; otherwise it continues
 * (comparing constant terms, without calling `isCorrect` again) within the subset budget. With honest
 * holders in that majority the honest polynomial is always the one reported.
 */
export function recoverWithCheck(
  shares: readonly Share[],
  threshold: number,
  secretLength: number,
  isCorrect: (secret: Uint8Array) => boolean,
  options: RecoveryOptions = {},
): { secret: Uint8Array; inconsistent: number[] } {
  checkShares(shares, threshold, secretLength);
  if (typeof isCorrect !== 'function') throw invalidArgument('INVALID_CALLBACK', `isCorrect must be a function, got ${describeValue(isCorrect)}`);
  const maxSubsets = options.maxSubsets ?? 50_000;
  assertInteger(maxSubsets, 'maxSubsets', 1, Number.MAX_SAFE_INTEGER);
  const n = shares.length;
  const t = threshold;
  const logs = new Uint32Array(t);
  const value = new Uint8Array(shareValueLength(secretLength));
  const subset = new Uint32Array(t);
  let accepted: Uint8Array | undefined;
  let best: number[] | undefined; // inconsistent shares of the best passing polynomial so far
  let tried = 0;
  let budgetExhausted = false;
  search: for (let e = 0; e <= n - t; e++) {
    // A t-subset with largest index m = t - 1 + e is [0, m] minus an e-subset `excluded` of [0, m).
    const excluded = Array.from({ length: e }, (_, i) => i);
    do {
      if (tried === maxSubsets) {
        budgetExhausted = true;
        break search;
      }
      tried++;
      for (let index = 0, next = 0, k = 0; index <= t - 1 + e; index++) {
        if (k < e && excluded[k] === index) k++;
        else subset[next++] = index;
      }
      const candidate = recoverFromSubset(shares, subset, logs, value, secretLength);
      const passes = accepted === undefined ? isCorrect(candidate) : sameBytes(candidate, accepted);
      if (!passes) {
        candidate.fill(0);
        continue;
      }
      accepted ??= candidate;
      const inconsistent = sharesOffPolynomial(shares, subset, logs, value);
      if (best === undefined || inconsistent.length < best.length) best = inconsistent;
      if (2 * (n - best.length) > n + t - 2) break search;
    } while (nextCombination(excluded, t - 1 + e));
  }
  value.fill(0);
  if (accepted === undefined || best === undefined) return unrecoverable(n, t, tried, budgetExhausted);
  return { secret: accepted, inconsistent: best };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}

/** Advances `combination` (sorted indices in [0, limit)) to the next in lexicographic order. */
function nextCombination(combination: number[], limit: number): boolean {
  const size = combination.length;
  for (let i = size - 1; i >= 0; i--) {
    if ((combination[i] as number) < limit - size + i) {
      combination[i] = (combination[i] as number) + 1;
      for (let j = i + 1; j < size; j++) combination[j] = (combination[j - 1] as number) + 1;
      return true;
    }
  }
  return false;
}

/** The x of every share whose y differs from the polynomial through `subset`, evaluated at its x. */
function sharesOffPolynomial(shares: readonly Share[], subset: Uint32Array, logs: Uint32Array, value: Uint8Array): number[] {
  const inSubset = new Set(subset);
  const inconsistent: number[] = [];
  for (const [index, share] of shares.entries()) {
    if (inSubset.has(index)) continue;
    lagrangeLogs(shares, subset, share.x, logs);
    interpolate(shares, subset, logs, value);
    let difference = 0;
    for (let p = 0; p < value.length; p++) difference |= (value[p] as number) ^ (share.y[p] as number);
    if (difference !== 0) inconsistent.push(share.x);
  }
  return inconsistent;
}

function unrecoverable(n: number, t: number, tried: number, capped: boolean): never {
  const scope = capped ? `the first ${tried} of the t-subsets (limit reached)` : `all ${tried} t-subsets`;
  throw new CryptoError(
    'DATA_LOSS',
    'SHAMIR_UNRECOVERABLE',
    `no ${t} of the ${n} shares reconstruct a secret that passes the check (tried ${scope}): too many wrong shares`,
  );
}

/** Wire form of a share: x as u16 big-endian || y. */
export function encodeShare(share: Share): Uint8Array {
  if (typeof share !== 'object' || share === null) throw invalidArgument('INVALID_SHARE', `share must be { x, y }, got ${describeValue(share)}`);
  checkX(share.x, 'share.x');
  assertBytes(share.y, 'share.y');
  if (share.y.length % 2 !== 0) throw invalidArgument('INVALID_LENGTH', `share.y must be an even number of bytes, got ${share.y.length}`);
  const out = new Uint8Array(2 + share.y.length);
  out[0] = share.x >>> 8;
  out[1] = share.x & 0xff;
  out.set(share.y, 2);
  return out;
}

/** Parses the wire form of a share of a `secretLength`-byte secret, checking its length and x. */
export function decodeShare(bytes: Uint8Array, secretLength: number): Share {
  assertInteger(secretLength, 'secretLength', 0, 2 ** 31 - 1);
  assertBytes(bytes, 'share bytes', 2 + shareValueLength(secretLength));
  const x = ((bytes[0] as number) << 8) | (bytes[1] as number);
  checkX(x, 'share x');
  return { x, y: bytes.slice(2) };
}
