/**
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over node:crypto: the one place outside model/ that
 * calls createHash (model/digest.ts explains its own). Coordinator, participant and proto hash through here.
 */
import { createHash, createHmac, type Hash } from 'node:crypto';
import { assertBytes, toHex } from './bytes.js';

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

/** Lower-case hex SHA-256 of the concatenation of `parts`: the content address of stored models and artefacts. */
export function sha256Hex(...parts: Uint8Array[]): string {
  return toHex(sha256(...parts));
}

/**
 * SHA-256 fed piece by piece, for data that arrives in chunks (transfers) and is never held whole
 * before it is checked.
 */
export class Sha256Stream {
  readonly #hash: Hash = createHash('sha256');

  update(part: Uint8Array): this {
    assertBytes(part, 'Sha256Stream part');
    this.#hash.update(part);
    return this;
  }

  /** The digest of everything passed to `update`; the stream cannot be used afterwards. */
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }
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
