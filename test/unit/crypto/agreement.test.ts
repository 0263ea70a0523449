import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  concatBytes,
  deriveMaskSeed,
  deriveShareKey,
  encodeFields,
  generateX25519KeyPair,
  hkdf,
  shareAssociatedData,
  toHex,
  utf8,
  x25519,
} from '../../../crypto/index.js';

const roundId = Uint8Array.from({ length: 24 }, (_, i) => i);
const otherRoundId = Uint8Array.from({ length: 24 }, (_, i) => i + 1);
const alice = { c: generateX25519KeyPair(), s: generateX25519KeyPair() };
const bob = { c: generateX25519KeyPair(), s: generateX25519KeyPair() };
const carol = { c: generateX25519KeyPair(), s: generateX25519KeyPair() };

describe('share keys (DESIGN.md step 3)', () => {
  it('sender and receiver derive the same key', () => {
    const sent = deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'alice', 'bob');
    const received = deriveShareKey(bob.c.secretKey, alice.c.publicKey, roundId, 'alice', 'bob');
    expect(sent.length).toBe(32);
    expect(toHex(received)).toBe(toHex(sent));
  });

  it('is HKDF(X25519, empty salt, "fedgate/v1/share" || fields(round, sender, receiver), 32)', () => {
    const info = concatBytes(utf8('fedgate/v1/share'), encodeFields([roundId, utf8('alice'), utf8('bob')]));
    const expected = hkdf(x25519(alice.c.secretKey, bob.c.publicKey), new Uint8Array(0), info, 32);
    expect(toHex(deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'alice', 'bob'))).toBe(toHex(expected));
  });

  it('changes with the round id, the direction, either name and the peer key', () => {
    const base = toHex(deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'alice', 'bob'));
    const variants = [
      deriveShareKey(alice.c.secretKey, bob.c.publicKey, otherRoundId, 'alice', 'bob'),
      deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'bob', 'alice'),
      deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'alicf', 'bob'),
      deriveShareKey(alice.c.secretKey, bob.c.publicKey, roundId, 'alice', 'bob2'),
      deriveShareKey(alice.c.secretKey, carol.c.publicKey, roundId, 'alice', 'bob'),
    ].map((key) => toHex(key));
    expect(new Set([base, ...variants]).size).toBe(6);
  });

  it('associated data is fields(round id, sender, receiver)', () => {
    expect(toHex(shareAssociatedData(roundId, 'alice', 'bob'))).toBe(toHex(encodeFields([roundId, utf8('alice'), utf8('bob')])));
  });
});

describe('mask seeds (DESIGN.md step 4)', () => {
  it('both sites derive the same seed, in either argument order', () => {
    const fromAlice = toHex(deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, roundId, 'alice', 'bob'));
    expect(toHex(deriveMaskSeed(bob.s.secretKey, alice.s.publicKey, roundId, 'bob', 'alice'))).toBe(fromAlice);
    expect(toHex(deriveMaskSeed(bob.s.secretKey, alice.s.publicKey, roundId, 'alice', 'bob'))).toBe(fromAlice);
    expect(toHex(deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, roundId, 'bob', 'alice'))).toBe(fromAlice);
  });

  it('orders the ids by their UTF-8 bytes', () => {
    // "é" (c3 a9) sorts after "z" (7a) bytewise; the info must hold "z" first.
    const info = concatBytes(utf8('fedgate/v1/mask'), encodeFields([roundId, utf8('z'), utf8('é')]));
    const expected = hkdf(x25519(alice.s.secretKey, bob.s.publicKey), new Uint8Array(0), info, 32);
    expect(toHex(deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, roundId, 'é', 'z'))).toBe(toHex(expected));
  });

  it('differs per round, per pair and from the share key of the same keys', () => {
    const seed = toHex(deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, roundId, 'alice', 'bob'));
    const others = [
      deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, otherRoundId, 'alice', 'bob'),
      deriveMaskSeed(alice.s.secretKey, bob.s.publicKey, roundId, 'alice', 'carol'),
      deriveMaskSeed(alice.s.secretKey, carol.s.publicKey, roundId, 'alice', 'bob'),
      deriveShareKey(alice.s.secretKey, bob.s.publicKey, roundId, 'alice', 'bob'),
    ].map((key) => toHex(key));
    expect(new Set([seed, ...others]).size).toBe(5);
  });
});

describe('argument checks', () => {
  const { secretKey, publicKey } = alice.c;
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'share key: empty sender', run: () => deriveShareKey(secretKey, publicKey, roundId, '', 'bob'), reason: 'INVALID_SITE_ID', message: 'sender must be a non-empty site id' },
    { name: 'share key: receiver not a string', run: () => deriveShareKey(secretKey, publicKey, roundId, 'a', 7 as unknown as string), reason: 'INVALID_SITE_ID', message: 'receiver' },
    { name: 'share key: round id not bytes', run: () => deriveShareKey(secretKey, publicKey, 'r' as unknown as Uint8Array, 'a', 'b'), reason: 'INVALID_BYTES', message: 'roundId' },
    { name: 'share key: short secret key', run: () => deriveShareKey(secretKey.subarray(1), publicKey, roundId, 'a', 'b'), reason: 'INVALID_LENGTH', message: 'secretKey must be 32 bytes long, got 31' },
    { name: 'share key: missing peer key', run: () => deriveShareKey(secretKey, undefined as unknown as Uint8Array, roundId, 'a', 'b'), reason: 'INVALID_BYTES', message: 'publicKey' },
    { name: 'mask seed: same site twice', run: () => deriveMaskSeed(secretKey, publicKey, roundId, 'a', 'a'), reason: 'INVALID_SITE_ID', message: 'siteA and siteB must differ' },
    { name: 'mask seed: empty siteB', run: () => deriveMaskSeed(secretKey, publicKey, roundId, 'a', ''), reason: 'INVALID_SITE_ID', message: 'siteB' },
    { name: 'mask seed: round id not bytes', run: () => deriveMaskSeed(secretKey, publicKey, null as unknown as Uint8Array, 'a', 'b'), reason: 'INVALID_BYTES', message: 'roundId' },
    { name: 'associated data: empty sender', run: () => shareAssociatedData(roundId, '', 'b'), reason: 'INVALID_SITE_ID', message: 'sender' },
  ];
  it.each(cases)('$name', ({ run, reason, message }) => {
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CryptoError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    expect((caught as CryptoError).message).toContain(message);
  });
});
