/** SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over node:crypto. */
import { createHash, createHmac } from 'node:crypto';
import { assertBytes } from './bytes.js';

/** Digest length of SHA-256 in bytes. */
export const SHA256_LENGTH = 32;

/** SHA-256 of the concatenation of `parts` (hashed incrementally, never concatenated in memory). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  for (const [index, part] of parts.entries()) {
    assertBytes(part, `sha256 part ${index}`);
    hash.update(part);
  }
  return new Uint8Array(hash.digest());
}

/** HMAC-SHA256 under `key` of the concatenation of `parts`. */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  assertBytes(key, 'key');
  const mac = createHmac('sha256', key);
  for (const [index, part] of parts.entries()) {
    assertBytes(part, `hmacSha256 part ${index}`);
    mac.update(part);
  }
  return new Uint8Array(mac.digest());
}
