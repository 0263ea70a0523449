import { describe, expect, it } from 'vitest';
import { CryptoError, fromHex, generateX25519KeyPair, toHex, x25519, x25519PublicKey } from '../../../crypto/index.js';
import { assertX25519PublicKey } from '../../../crypto/x25519.js';

// RFC 7748 section 5.2: scalar multiplication vectors (input u of vector 2 has its top bit set, which
// X25519 must mask).
const SCALAR_MULT = [
  {
    scalar: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
    u: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
    out: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
  },
  {
    scalar: '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
    u: 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
    out: '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
  },
];

// RFC 7748 section 6.1: Diffie-Hellman between Alice and Bob.
const ALICE_SECRET = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_SECRET = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

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

describe('X25519, RFC 7748', () => {
  it.each(SCALAR_MULT)('section 5.2 vector for scalar $scalar', ({ scalar, u, out }) => {
    expect(toHex(x25519(fromHex(scalar), fromHex(u)))).toBe(out);
  });

  it('section 5.2 iterated vector after 1 and 1000 iterations', () => {
    let k = fromHex('0900000000000000000000000000000000000000000000000000000000000000');
    let u = k;
    for (let iteration = 1; iteration <= 1000; iteration++) {
      const next = x25519(k, u);
      u = k;
      k = next;
      if (iteration === 1) expect(toHex(k)).toBe('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    expect(toHex(k)).toBe('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
  });

  it('section 6.1 Alice and Bob: public keys and shared secret', () => {
    expect(toHex(x25519PublicKey(fromHex(ALICE_SECRET)))).toBe(ALICE_PUBLIC);
    expect(toHex(x25519PublicKey(fromHex(BOB_SECRET)))).toBe(BOB_PUBLIC);
    expect(toHex(x25519(fromHex(ALICE_SECRET), fromHex(BOB_PUBLIC)))).toBe(SHARED);
    expect(toHex(x25519(fromHex(BOB_SECRET), fromHex(ALICE_PUBLIC)))).toBe(SHARED);
  });

  it('generated key pairs are consistent and agree', () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    expect(a.publicKey.length).toBe(32);
    expect(a.secretKey.length).toBe(32);
    expect(toHex(x25519PublicKey(a.secretKey))).toBe(toHex(a.publicKey));
    expect(toHex(a.secretKey)).not.toBe(toHex(b.secretKey));
    expect(toHex(x25519(a.secretKey, b.publicKey))).toBe(toHex(x25519(b.secretKey, a.publicKey)));
  });

  // Points of small order (Bernstein's list of Curve25519 points to reject, also in Wycheproof): the
  // shared secret is all zeros whatever the scalar.
  const LOW_ORDER = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];
  it.each(LOW_ORDER)('rejects the low-order point %s', (point) => {
    expectCryptoError(() => x25519(fromHex(ALICE_SECRET), fromHex(point)), 'INVALID_ARGUMENT', 'X25519_LOW_ORDER', 'low-order');
    // ... and so does the check a site makes on a neighbour's advertised key, with no secret of its own.
    expectCryptoError(() => assertX25519PublicKey(fromHex(point)), 'INVALID_ARGUMENT', 'X25519_LOW_ORDER', 'low-order');
  });

  it('assertX25519PublicKey accepts real public keys', () => {
    expect(() => assertX25519PublicKey(fromHex(ALICE_PUBLIC))).not.toThrow();
    for (let i = 0; i < 20; i++) expect(() => assertX25519PublicKey(generateX25519KeyPair().publicKey)).not.toThrow();
  });

  const key = new Uint8Array(32).fill(1);
  const malformed: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'short secret key', run: () => x25519(new Uint8Array(31), key), reason: 'INVALID_LENGTH', message: 'secretKey must be 32 bytes long, got 31' },
    { name: 'long public key', run: () => x25519(key, new Uint8Array(33)), reason: 'INVALID_LENGTH', message: 'publicKey must be 32 bytes long, got 33' },
    { name: 'public key as hex string', run: () => x25519(key, ALICE_PUBLIC as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'publicKey must be a Uint8Array of 32 bytes' },
    { name: 'public key of missing secret', run: () => x25519PublicKey(undefined as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'secretKey' },
    { name: 'public key of empty secret', run: () => x25519PublicKey(new Uint8Array(0)), reason: 'INVALID_LENGTH', message: 'got 0 bytes' },
  ];
  it.each(malformed)('argument check: $name', ({ run, reason, message }) => {
    expectCryptoError(run, 'INVALID_ARGUMENT', reason, message);
  });
});
