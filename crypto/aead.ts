/**
 * AES-256-GCM (NIST SP 800-38D) sealing of Shamir shares in transit between sites (DESIGN.md step 3;
 * Bonawitz et al. 2017, round 1: "AE.enc"). The wire form is nonce (12) || ciphertext || tag (16). The
 * nonce is random: a share key is used for one (round, sender, receiver) and so for very few messages,
 * far below the 2^32 random-nonce limit of SP 800-38D section 8.3.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { assertBytes } from './bytes.js';
import { CryptoError } from './errors.js';

export const SHARE_KEY_LENGTH = 32;
export const SHARE_NONCE_LENGTH = 12;
export const SHARE_TAG_LENGTH = 16;
/** Smallest sealed share: an empty plaintext. */
export const SEALED_SHARE_OVERHEAD = SHARE_NONCE_LENGTH + SHARE_TAG_LENGTH;

/** Encrypts and authenticates `plaintext`, binding `associatedData` (round id, sender, receiver). */
export function sealShare(key: Uint8Array, plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  assertBytes(key, 'key', SHARE_KEY_LENGTH);
  assertBytes(plaintext, 'plaintext');
  assertBytes(associatedData, 'associatedData');
  const nonce = randomBytes(SHARE_NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: SHARE_TAG_LENGTH });
  cipher.setAAD(associatedData);
  const sealed = new Uint8Array(SEALED_SHARE_OVERHEAD + plaintext.length);
  sealed.set(nonce, 0);
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  sealed.set(body, SHARE_NONCE_LENGTH);
  sealed.set(tail, SHARE_NONCE_LENGTH + body.length);
  sealed.set(cipher.getAuthTag(), SHARE_NONCE_LENGTH + plaintext.length);
  return sealed;
}

/**
 * Verifies and decrypts a sealed share. Any modification of nonce, ciphertext, tag or associated data,
 * and any truncation, fails with reason 'SHARE_DECRYPT_FAILED'; no plaintext is released before the tag
 * has been checked.
 */
export function openShare(key: Uint8Array, sealed: Uint8Array, associatedData: Uint8Array): Uint8Array {
  assertBytes(key, 'key', SHARE_KEY_LENGTH);
  assertBytes(sealed, 'sealed');
  assertBytes(associatedData, 'associatedData');
  if (sealed.length < SEALED_SHARE_OVERHEAD) {
    throw new CryptoError(
      'INVALID_ARGUMENT',
      'SHARE_DECRYPT_FAILED',
      `sealed share is ${sealed.length} bytes, expected at least ${SEALED_SHARE_OVERHEAD} (12-byte nonce + 16-byte tag): truncated`,
    );
  }
  const nonce = sealed.subarray(0, SHARE_NONCE_LENGTH);
  const ciphertext = sealed.subarray(SHARE_NONCE_LENGTH, sealed.length - SHARE_TAG_LENGTH);
  const tag = sealed.subarray(sealed.length - SHARE_TAG_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: SHARE_TAG_LENGTH });
  decipher.setAAD(associatedData);
  decipher.setAuthTag(tag);
  const plaintext = new Uint8Array(ciphertext.length);
  const body = decipher.update(ciphertext);
  try {
    const tail = decipher.final();
    plaintext.set(body, 0);
    plaintext.set(tail, body.length);
    return plaintext;
  } catch (error) {
    throw new CryptoError(
      'INVALID_ARGUMENT',
      'SHARE_DECRYPT_FAILED',
      `sealed share of ${sealed.length} bytes failed AES-256-GCM authentication: wrong key, or nonce, ciphertext, tag or associated data modified`,
      { cause: error },
    );
  } finally {
    body.fill(0);
  }
}
