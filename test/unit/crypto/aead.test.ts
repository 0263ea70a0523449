import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CryptoError, openShare, sealShare, shareAssociatedData, toHex, utf8 } from '../../../crypto/index.js';

const key = new Uint8Array(randomBytes(32));
const associatedData = shareAssociatedData(Uint8Array.of(1, 2, 3, 4), 'site-a', 'site-b');

function expectCryptoError(run: () => unknown, reason: string, messagePart: string): void {
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

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

describe('AES-256-GCM share sealing', () => {
  it('round-trips, with nonce || ciphertext || tag framing and a fresh nonce per seal', () => {
    const plaintext = utf8('x=17 y=share bytes');
    const sealed = sealShare(key, plaintext, associatedData);
    expect(sealed.length).toBe(12 + plaintext.length + 16);
    expect(toHex(openShare(key, sealed, associatedData))).toBe(toHex(plaintext));
    const again = sealShare(key, plaintext, associatedData);
    expect(toHex(again.subarray(0, 12))).not.toBe(toHex(sealed.subarray(0, 12)));
    expect(toHex(openShare(key, again, associatedData))).toBe(toHex(plaintext));
  });

  it('round-trips an empty plaintext and a large one', () => {
    expect(openShare(key, sealShare(key, new Uint8Array(0), associatedData), associatedData).length).toBe(0);
    const large = new Uint8Array(randomBytes(100_000));
    expect(toHex(openShare(key, sealShare(key, large, associatedData), associatedData))).toBe(toHex(large));
  });

  it('rejects every single-bit flip of nonce, ciphertext and tag', () => {
    const sealed = sealShare(key, utf8('share'), associatedData);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      expectCryptoError(() => openShare(key, flipBit(sealed, bit), associatedData), 'SHARE_DECRYPT_FAILED', 'authentication');
    }
  });

  it('rejects every single-bit flip of the associated data', () => {
    const sealed = sealShare(key, utf8('share'), associatedData);
    for (let bit = 0; bit < associatedData.length * 8; bit++) {
      expectCryptoError(() => openShare(key, sealed, flipBit(associatedData, bit)), 'SHARE_DECRYPT_FAILED', 'authentication');
    }
  });

  it('rejects the wrong key and swapped sender/receiver', () => {
    const sealed = sealShare(key, utf8('share'), associatedData);
    const otherKey = key.slice();
    otherKey[31] = (otherKey[31] as number) ^ 0x80;
    expectCryptoError(() => openShare(otherKey, sealed, associatedData), 'SHARE_DECRYPT_FAILED', 'wrong key');
    const swapped = shareAssociatedData(Uint8Array.of(1, 2, 3, 4), 'site-b', 'site-a');
    expectCryptoError(() => openShare(key, sealed, swapped), 'SHARE_DECRYPT_FAILED', 'associated data');
  });

  it('rejects every truncation and an appended byte', () => {
    const sealed = sealShare(key, utf8('share'), associatedData);
    for (let length = 0; length < sealed.length; length++) {
      const message = length < 28 ? `sealed share is ${length} bytes, expected at least 28` : 'authentication';
      expectCryptoError(() => openShare(key, sealed.subarray(0, length), associatedData), 'SHARE_DECRYPT_FAILED', message);
    }
    const extended = new Uint8Array(sealed.length + 1);
    extended.set(sealed);
    expectCryptoError(() => openShare(key, extended, associatedData), 'SHARE_DECRYPT_FAILED', 'authentication');
  });

  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'seal: 16-byte key', run: () => sealShare(new Uint8Array(16), utf8('x'), associatedData), reason: 'INVALID_LENGTH', message: 'key must be 32 bytes long, got 16' },
    { name: 'seal: plaintext string', run: () => sealShare(key, 'x' as unknown as Uint8Array, associatedData), reason: 'INVALID_BYTES', message: 'plaintext' },
    { name: 'seal: missing associated data', run: () => sealShare(key, utf8('x'), undefined as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'associatedData' },
    { name: 'open: key as array', run: () => openShare([...key] as unknown as Uint8Array, new Uint8Array(40), associatedData), reason: 'INVALID_BYTES', message: 'key must be a Uint8Array of 32 bytes' },
    { name: 'open: sealed not bytes', run: () => openShare(key, null as unknown as Uint8Array, associatedData), reason: 'INVALID_BYTES', message: 'sealed' },
    { name: 'open: associated data not bytes', run: () => openShare(key, new Uint8Array(40), 'ad' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'associatedData' },
  ];
  it.each(cases)('argument check: $name', ({ run, reason, message }) => expectCryptoError(run, reason, message));
});
