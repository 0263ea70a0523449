import { describe, expect, it } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import { CryptoError, fromHex, hkdf, hkdfExpand, hkdfExtract, hmacSha256, sha256, sha256Hex, Sha256Stream, toHex, utf8 } from '../../../crypto/index.js';

function range(first: number, last: number): Uint8Array {
  return Uint8Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

// RFC 5869 appendix A, test cases 1-3 (SHA-256).
const RFC5869 = [
  {
    name: 'A.1 basic',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: fromHex('000102030405060708090a0b0c'),
    info: fromHex('f0f1f2f3f4f5f6f7f8f9'),
    length: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs and outputs',
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c' +
      '59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71' +
      'cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3 zero-length salt and info',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

describe('HKDF-SHA256, RFC 5869 appendix A', () => {
  it.each(RFC5869)('$name: extract', ({ ikm, salt, prk }) => {
    expect(toHex(hkdfExtract(salt, ikm))).toBe(prk);
  });
  it.each(RFC5869)('$name: expand', ({ prk, info, length, okm }) => {
    expect(toHex(hkdfExpand(fromHex(prk), info, length))).toBe(okm);
  });
  it.each(RFC5869)('$name: extract then expand', ({ ikm, salt, info, length, okm }) => {
    expect(toHex(hkdf(ikm, salt, info, length))).toBe(okm);
  });

  it('expands to every length up to 255 blocks as a prefix of the longest output', () => {
    const prk = fromHex(RFC5869[0]!.prk);
    const longest = hkdfExpand(prk, utf8('x'), 255 * 32);
    for (const length of [0, 1, 31, 32, 33, 64, 65, 8159]) {
      expect(toHex(hkdfExpand(prk, utf8('x'), length))).toBe(toHex(longest.subarray(0, length)));
    }
  });
});

describe('SHA-256 and HMAC-SHA256', () => {
  it('sha256 hashes the concatenation of its parts', () => {
    // FIPS 180-2 appendix B.1: SHA-256("abc").
    expect(toHex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(toHex(sha256(utf8('a'), utf8(''), utf8('bc')))).toBe(toHex(sha256(utf8('abc'))));
    expect(toHex(sha256())).toBe(createHash('sha256').digest('hex'));
  });

  it('sha256Hex and Sha256Stream give the same digest as sha256, whole or in pieces', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex(utf8('abc'))).toBe(abc);
    expect(sha256Hex(utf8('ab'), utf8('c'))).toBe(abc);
    expect(toHex(new Sha256Stream().update(utf8('a')).update(utf8('')).update(utf8('bc')).digest())).toBe(abc);
    expect(() => new Sha256Stream().update('abc' as unknown as Uint8Array)).toThrow(/Sha256Stream part must be a Uint8Array/);
  });

  it('hmacSha256 matches RFC 4231 test case 2 and hashes parts as one message', () => {
    const key = utf8('Jefe');
    const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
    expect(toHex(hmacSha256(key, utf8('what do ya want for nothing?')))).toBe(expected);
    expect(toHex(hmacSha256(key, utf8('what do ya '), utf8('want for nothing?')))).toBe(expected);
    expect(toHex(hmacSha256(key))).toBe(createHmac('sha256', key).digest('hex'));
  });
});

describe('argument checks', () => {
  const prk = new Uint8Array(32);
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'extract salt not bytes', run: () => hkdfExtract('s' as unknown as Uint8Array, prk), reason: 'INVALID_BYTES', message: 'salt' },
    { name: 'extract ikm not bytes', run: () => hkdfExtract(prk, null as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'ikm' },
    { name: 'expand short prk', run: () => hkdfExpand(new Uint8Array(31), prk, 1), reason: 'INVALID_LENGTH', message: 'prk must be at least 32 bytes long, got 31' },
    { name: 'expand info not bytes', run: () => hkdfExpand(prk, 'info' as unknown as Uint8Array, 1), reason: 'INVALID_BYTES', message: 'info' },
    { name: 'expand too long', run: () => hkdfExpand(prk, prk, 255 * 32 + 1), reason: 'INVALID_INTEGER', message: 'length must be an integer in [0, 8160], got number 8161' },
    { name: 'expand negative', run: () => hkdfExpand(prk, prk, -1), reason: 'INVALID_INTEGER', message: 'length' },
    { name: 'expand fractional', run: () => hkdfExpand(prk, prk, 2.5), reason: 'INVALID_INTEGER', message: 'length' },
    { name: 'hkdf NaN length', run: () => hkdf(prk, prk, prk, Number.NaN), reason: 'INVALID_INTEGER', message: 'NaN' },
    { name: 'sha256 part not bytes', run: () => sha256(prk, 'x' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'sha256 part 1' },
    { name: 'hmac key not bytes', run: () => hmacSha256('k' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'key' },
  ];
  it.each(cases)('$name', ({ run, reason, message }) => expectInvalid(run, reason, message));
});

function expectInvalid(run: () => unknown, reason: string, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CryptoError);
  expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
  expect((caught as CryptoError).message).toContain(messagePart);
}
