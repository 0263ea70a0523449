import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import {
  CryptoError,
  combineShares,
  decodeShare,
  encodeShare,
  recoverWithCheck,
  splitSecret,
  toHex,
  type Share,
} from '../../../crypto/index.js';

function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** All k-subsets of [0, n) in lexicographic order. */
function* subsets(n: number, k: number, start = 0, prefix: number[] = []): Generator<number[]> {
  if (prefix.length === k) {
    yield prefix;
    return;
  }
  for (let i = start; i <= n - (k - prefix.length); i++) yield* subsets(n, k, i + 1, [...prefix, i]);
}

/** Deterministic randomness for reproducible tests: SHA-256 in counter mode. */
function seededRandom(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let offset = 0; offset < n; offset += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - offset)), offset);
    }
    return out;
  };
}

function expectCryptoError(run: () => unknown, code: string, reason: string, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CryptoError);
  expect(caught).toMatchObject({ code, reason });
  expect((caught as CryptoError).message).toContain(messagePart);
}

function corrupt(share: Share, byte = 0): Share {
  const y = share.y.slice();
  y[byte] = (y[byte] as number) ^ 0x5a;
  return { x: share.x, y };
}

/** A share whose y is replaced by unrelated random bytes. */
function garbage(share: Share): Share {
  return { x: share.x, y: new Uint8Array(randomBytes(share.y.length)) };
}

describe('Shamir over GF(2^16): reconstruction', () => {
  it('every 5-subset of 7 shares reconstructs (all 21 subsets)', () => {
    const secret = new Uint8Array(randomBytes(32));
    const shares = splitSecret(secret, 5, range(1, 7));
    expect(shares.map((share) => share.x)).toEqual(range(1, 7));
    let count = 0;
    for (const subset of subsets(7, 5)) {
      expect(toHex(combineShares(subset.map((i) => shares[i] as Share), 5, 32))).toBe(toHex(secret));
      count++;
    }
    expect(count).toBe(21);
  });

  it('random 51-subsets of 100 shares reconstruct, in any order', () => {
    const random = seededRandom('n100');
    const secret = random(32);
    const xs = range(1, 100).map((i) => (i * 7919) % 65_536);
    const shares = splitSecret(secret, 51, xs, random);
    for (let trial = 0; trial < 200; trial++) {
      // Fisher-Yates shuffle driven by the seeded source; the first 51 are a uniform random subset.
      const order = [...shares];
      const draws = random(4 * order.length);
      const view = new DataView(draws.buffer);
      for (let i = order.length - 1; i > 0; i--) {
        const j = view.getUint32(4 * i) % (i + 1);
        [order[i], order[j]] = [order[j] as Share, order[i] as Share];
      }
      expect(toHex(combineShares(order.slice(0, 51), 51, 32))).toBe(toHex(secret));
    }
  });

  it('handles odd lengths, empty secrets, threshold 1 and the extreme x values', () => {
    for (const length of [0, 1, 3, 33]) {
      const secret = new Uint8Array(randomBytes(length));
      const shares = splitSecret(secret, 3, [65_535, 1, 40_000, 2]);
      expect(shares[0]?.y.length).toBe(2 * Math.ceil(length / 2));
      expect(toHex(combineShares(shares.slice(1), 3, length))).toBe(toHex(secret));
      expect(toHex(combineShares([shares[3], shares[0], shares[2]] as Share[], 3, length))).toBe(toHex(secret));
    }
    const constant = splitSecret(Uint8Array.of(9, 8), 1, [5, 6]);
    expect(toHex(combineShares([constant[1] as Share], 1, 2))).toBe('0908');
  });

  // Perfect secrecy, counted: a polynomial of degree <= t - 1 is fixed by its values at t points, so the
  // polynomials consistent with t - 1 held shares are enumerated exactly once by choosing their value at
  // one more point z (65,536 choices). Tally the secret each completion encodes: every one of the 256
  // one-byte secrets (symbol = secret << 8) must be reached by exactly one completion.
  it.each([2, 5])('t - 1 shares of a 1-byte secret leave exactly one completion per possible secret (t = %i)', (t) => {
    const held = splitSecret(Uint8Array.of(0xa7), t, range(11, t - 1 + 3)).slice(0, t - 1);
    const completion: Share = { x: 60_000, y: new Uint8Array(2) };
    const completions = new Uint32Array(65_536);
    for (let atZ = 0; atZ < 65_536; atZ++) {
      completion.y[0] = atZ >>> 8;
      completion.y[1] = atZ & 0xff;
      const symbol = combineShares([...held, completion], t, 2);
      completions[((symbol[0] as number) << 8) | (symbol[1] as number)]! += 1;
    }
    const perSecret = Array.from({ length: 256 }, (_, secret) => completions[secret << 8]);
    expect(new Set(perSecret)).toEqual(new Set([1]));
    expect(completions.every((count) => count === 1)).toBe(true);
  });
});

describe('Shamir: malformed and dishonest shares', () => {
  const secret = new Uint8Array(randomBytes(32));
  const shares = splitSecret(secret, 3, [1, 2, 3, 4, 5]);
  const s = (i: number): Share => shares[i] as Share;
  const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
  const commitment = sha(secret);
  const isCorrect = (candidate: Uint8Array): boolean => sha(candidate) === commitment;

  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'split: threshold 0', run: () => splitSecret(secret, 0, [1, 2]), reason: 'INVALID_INTEGER', message: 'threshold must be an integer in [1, 65535], got number 0' },
    { name: 'split: fewer points than threshold', run: () => splitSecret(secret, 3, [1, 2]), reason: 'NOT_ENOUGH_SHARES', message: 'at least threshold = 3 points, got 2' },
    { name: 'split: x = 0', run: () => splitSecret(secret, 1, [0]), reason: 'INVALID_SHARE_X', message: 'xs[0] must be an integer in [1, 65535], got number 0' },
    { name: 'split: x out of range', run: () => splitSecret(secret, 1, [65_536]), reason: 'INVALID_SHARE_X', message: 'got number 65536' },
    { name: 'split: fractional x', run: () => splitSecret(secret, 1, [1.5]), reason: 'INVALID_SHARE_X', message: 'got number 1.5' },
    { name: 'split: duplicate x', run: () => splitSecret(secret, 2, [4, 7, 4]), reason: 'DUPLICATE_SHARE_X', message: 'xs[2] = 4 appears twice' },
    { name: 'split: secret not bytes', run: () => splitSecret('s' as unknown as Uint8Array, 1, [1]), reason: 'INVALID_BYTES', message: 'secret' },
    { name: 'split: short randomness', run: () => splitSecret(secret, 2, [1, 2], () => new Uint8Array(3)), reason: 'INVALID_LENGTH', message: 'random(n) result must be 32 bytes long, got 3' },
    { name: 'combine: fewer than threshold', run: () => combineShares([s(0), s(1)], 3, 32), reason: 'NOT_ENOUGH_SHARES', message: 'need threshold = 3 shares to reconstruct, got 2' },
    { name: 'combine: duplicate x', run: () => combineShares([s(0), s(1), s(0)], 3, 32), reason: 'DUPLICATE_SHARE_X', message: 'shares[2].x = 1 appears twice' },
    { name: 'combine: x = 0', run: () => combineShares([s(0), s(1), { x: 0, y: s(2).y }], 3, 32), reason: 'INVALID_SHARE_X', message: 'shares[2].x must be an integer in [1, 65535], got number 0' },
    { name: 'combine: x above 65535', run: () => combineShares([s(0), { x: 70_000, y: s(1).y }, s(2)], 3, 32), reason: 'INVALID_SHARE_X', message: 'shares[1].x' },
    { name: 'combine: short y', run: () => combineShares([s(0), s(1), { x: 3, y: s(2).y.subarray(2) }], 3, 32), reason: 'INVALID_LENGTH', message: 'shares[2].y must be 32 bytes long, got 30' },
    { name: 'combine: y for another length', run: () => combineShares([s(0), s(1), s(2)], 3, 30), reason: 'INVALID_LENGTH', message: 'shares[0].y must be 30 bytes long, got 32' },
    { name: 'combine: null share', run: () => combineShares([s(0), null as unknown as Share, s(2)], 3, 32), reason: 'INVALID_SHARE', message: 'shares[1] must be { x, y }' },
    { name: 'combine: negative secret length', run: () => combineShares(shares, 3, -1), reason: 'INVALID_INTEGER', message: 'secretLength' },
    { name: 'split: xs not an array', run: () => splitSecret(secret, 1, 'ab' as unknown as number[]), reason: 'INVALID_SHARE_X', message: 'xs must be an array of evaluation points, got string of 2 characters' },
    { name: 'combine: shares not an array', run: () => combineShares('abc' as unknown as Share[], 1, 2), reason: 'INVALID_SHARE', message: 'shares must be an array, got string of 3 characters' },
    { name: 'combine: a share that is a number', run: () => combineShares([s(0), 5 as unknown as Share, s(2)], 3, 32), reason: 'INVALID_SHARE', message: 'shares[1] must be { x, y }, got number 5' },
    { name: 'combine: secret length above 2^31 - 1', run: () => combineShares(shares, 3, 2 ** 31), reason: 'INVALID_INTEGER', message: 'secretLength' },
    { name: 'encode: null', run: () => encodeShare(null as unknown as Share), reason: 'INVALID_SHARE', message: 'share must be { x, y }, got null' },
    { name: 'encode: a number', run: () => encodeShare(7 as unknown as Share), reason: 'INVALID_SHARE', message: 'share must be { x, y }, got number 7' },
    { name: 'encode: y not bytes', run: () => encodeShare({ x: 1, y: 'ab' as unknown as Uint8Array }), reason: 'INVALID_BYTES', message: 'share.y' },
    { name: 'decode: negative secret length', run: () => decodeShare(new Uint8Array(34), -1), reason: 'INVALID_INTEGER', message: 'secretLength' },
    { name: 'decode: secret length above 2^31 - 1', run: () => decodeShare(new Uint8Array(4), 2 ** 31), reason: 'INVALID_INTEGER', message: 'secretLength' },
    { name: 'recover: callback missing', run: () => recoverWithCheck(shares, 3, 32, undefined as never), reason: 'INVALID_CALLBACK', message: 'isCorrect must be a function' },
    { name: 'recover: zero subset budget', run: () => recoverWithCheck(shares, 3, 32, () => true, { maxSubsets: 0 }), reason: 'INVALID_INTEGER', message: 'maxSubsets' },
    { name: 'encode: x = 0', run: () => encodeShare({ x: 0, y: s(0).y }), reason: 'INVALID_SHARE_X', message: 'share.x' },
    { name: 'encode: odd y', run: () => encodeShare({ x: 1, y: new Uint8Array(3) }), reason: 'INVALID_LENGTH', message: 'even number of bytes, got 3' },
    { name: 'decode: wrong length', run: () => decodeShare(new Uint8Array(33), 32), reason: 'INVALID_LENGTH', message: 'share bytes must be 34 bytes long, got 33' },
    { name: 'decode: x = 0', run: () => decodeShare(new Uint8Array(34), 32), reason: 'INVALID_SHARE_X', message: 'share x must be an integer in [1, 65535], got number 0' },
  ];
  it.each(cases)('argument check: $name', ({ run, reason, message }) => expectCryptoError(run, 'INVALID_ARGUMENT', reason, message));

  it('encodes as u16 x || y and decodes back', () => {
    const encoded = encodeShare({ x: 0x1234, y: s(0).y });
    expect(toHex(encoded.subarray(0, 2))).toBe('1234');
    expect(decodeShare(encoded, 32)).toEqual({ x: 0x1234, y: s(0).y });
    expect(decodeShare(encodeShare({ x: 65_535, y: Uint8Array.of(1, 2) }), 1)).toEqual({ x: 65_535, y: Uint8Array.of(1, 2) });
  });

  it('a corrupted share changes the combined secret, and recoverWithCheck names it', () => {
    const bad = [s(0), corrupt(s(1), 5), s(2), s(3), s(4)];
    expect(toHex(combineShares(bad, 3, 32))).not.toBe(toHex(secret));
    const result = recoverWithCheck(bad, 3, 32, isCorrect);
    expect(toHex(result.secret)).toBe(toHex(secret));
    expect(result.inconsistent).toEqual([2]);
  });

  it('swapped shares (y of one x presented under another x) are named, even when the swap keeps the secret', () => {
    // With x = 1, 2, 3 in GF(2^16) the Lagrange coefficients of x = 2 and x = 3 at 0 are both 1, so the
    // swapped pair still interpolates the right secret through a different polynomial; the honest
    // majority (x = 1, 4, 5, 6, 7) must still be the polynomial reported.
    const seven = splitSecret(secret, 3, range(1, 7));
    const t = (i: number): Share => seven[i] as Share;
    const swapped = [t(0), { x: 2, y: t(2).y }, { x: 3, y: t(1).y }, t(3), t(4), t(5), t(6)];
    expect(toHex(combineShares(swapped, 3, 32))).toBe(toHex(secret));
    const result = recoverWithCheck(swapped, 3, 32, isCorrect);
    expect(toHex(result.secret)).toBe(toHex(secret));
    expect(result.inconsistent).toEqual([2, 3]);
    const swappedLate = [t(0), t(1), t(2), t(3), { x: 5, y: t(5).y }, { x: 6, y: t(4).y }, t(6)];
    expect(recoverWithCheck(swappedLate, 3, 32, isCorrect).inconsistent).toEqual([5, 6]);
  });

  it('a share from another secret is named; all honest shares give no inconsistency', () => {
    const foreign = splitSecret(new Uint8Array(randomBytes(32)), 3, [1, 2, 3, 4, 5]);
    const mixed = [s(0), s(1), foreign[2] as Share, s(3), s(4)];
    expect(recoverWithCheck(mixed, 3, 32, isCorrect).inconsistent).toEqual([3]);
    expect(recoverWithCheck(shares, 3, 32, isCorrect).inconsistent).toEqual([]);
  });

  it('finds the honest subset among 100 shares with several bad ones early in the list', () => {
    const random = seededRandom('robust');
    const big = random(32);
    const all = splitSecret(big, 51, range(1, 100), random);
    const tampered = all.map((share) => ([1, 17, 50].includes(share.x) ? corrupt(share, 31) : share));
    const result = recoverWithCheck(tampered, 51, 32, (candidate) => toHex(candidate) === toHex(big));
    expect(toHex(result.secret)).toBe(toHex(big));
    expect(result.inconsistent).toEqual([1, 17, 50]);
  });

  it('colluding holders on another polynomial through the same secret are named, never the honest ones', () => {
    // Holders 5, 6, 7 hand in shares of a second polynomial with the same constant term: their subset
    // passes too (same secret), but it has fewer shares on it, so the honest one stays the reported one.
    const honest = splitSecret(secret, 3, range(1, 7));
    const colluding = splitSecret(secret, 3, [5, 6, 7]);
    const result = recoverWithCheck([...honest.slice(0, 4), ...colluding], 3, 32, isCorrect);
    expect(toHex(result.secret)).toBe(toHex(secret));
    expect(result.inconsistent).toEqual([5, 6, 7]);
  });

  it('a majority on a polynomial with another secret is named, and isCorrect is asked only until a secret passes', () => {
    // Holders 4 to 7 agree on a wrong secret; once the honest minority's secret passed, other subsets are
    // compared with it (constant terms), so the wrong majority cannot take the blame off itself.
    const honest = splitSecret(secret, 3, range(1, 7));
    const wrong = splitSecret(new Uint8Array(randomBytes(32)), 3, [4, 5, 6, 7]);
    let calls = 0;
    const counted = (candidate: Uint8Array): boolean => {
      calls++;
      return isCorrect(candidate);
    };
    const result = recoverWithCheck([...honest.slice(0, 3), ...wrong], 3, 32, counted);
    expect(toHex(result.secret)).toBe(toHex(secret));
    expect(result.inconsistent).toEqual([4, 5, 6, 7]);
    expect(calls).toBe(1);
  });

  it('zeroises what it is done with: the random coefficients drawn, and every candidate secret that failed the check', () => {
    const drawn: Uint8Array[] = [];
    const shared = splitSecret(secret, 3, [1, 2, 3, 4, 5], (n) => {
      const bytes = new Uint8Array(randomBytes(n));
      drawn.push(bytes);
      return bytes;
    });
    expect(drawn).toHaveLength(1);
    expect(drawn[0]?.every((byte) => byte === 0)).toBe(true);
    const rejected: Uint8Array[] = [];
    const result = recoverWithCheck([garbage(shared[0] as Share), ...shared.slice(1)], 3, 32, (candidate) => {
      const passes = isCorrect(candidate);
      if (!passes) rejected.push(candidate);
      return passes;
    });
    expect(toHex(result.secret)).toBe(toHex(secret));
    expect(rejected.length).toBeGreaterThan(0);
    for (const candidate of rejected) expect(candidate.every((byte) => byte === 0)).toBe(true);
  });

  it('throws SHAMIR_UNRECOVERABLE when no subset passes, and when the subset budget runs out', () => {
    const tooMany = [garbage(s(0)), garbage(s(1)), garbage(s(2)), s(3), s(4)];
    expectCryptoError(() => recoverWithCheck(tooMany, 3, 32, isCorrect), 'DATA_LOSS', 'SHAMIR_UNRECOVERABLE', 'tried all 10 t-subsets');
    const twoBad = [garbage(s(0)), garbage(s(1)), s(2), s(3), s(4)];
    expectCryptoError(() => recoverWithCheck(twoBad, 3, 32, isCorrect, { maxSubsets: 3 }), 'DATA_LOSS', 'SHAMIR_UNRECOVERABLE', 'first 3 of the t-subsets');
    expect(toHex(recoverWithCheck(twoBad, 3, 32, isCorrect).secret)).toBe(toHex(secret));
  });
});
