/**
 * X25519 Diffie-Hellman (RFC 7748 section 5 and 6.1) on raw 32-byte keys, computed by OpenSSL through
 * node:crypto KeyObjects. Raw keys are wrapped in the fixed DER prefixes of RFC 8410 (PKCS #8 private
 * key, SubjectPublicKeyInfo public key), which is the only import form node:crypto offers for them.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { assertBytes } from './bytes.js';
import { CryptoError } from './errors.js';

export const X25519_KEY_LENGTH = 32;

/** RFC 8410 section 7: PKCS #8 OneAsymmetricKey for id-X25519 (1.3.101.110), up to the 32 key bytes. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** RFC 8410 section 4: SubjectPublicKeyInfo for id-X25519, up to the 32 key bytes. */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

function importSecretKey(secretKey: Uint8Array): KeyObject {
  assertBytes(secretKey, 'secretKey', X25519_KEY_LENGTH);
  const der = Buffer.concat([PKCS8_PREFIX, secretKey]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function checkPreparedKey(key: KeyObject): KeyObject {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'x25519') {
    throw new CryptoError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `secretKey must be 32 bytes or an X25519 private KeyObject from prepareX25519SecretKey, got a ${key.type} ${String(key.asymmetricKeyType)} key`);
  }
  return key;
}

function importPublicKey(publicKey: Uint8Array): KeyObject {
  assertBytes(publicKey, 'publicKey', X25519_KEY_LENGTH);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
}

function rawSecretKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  try {
    return new Uint8Array(der.subarray(der.length - X25519_KEY_LENGTH));
  } finally {
    der.fill(0);
  }
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - X25519_KEY_LENGTH));
}

/** A fresh key pair from the operating system's CSPRNG (DESIGN.md step 2: c and s pairs per round). */
export function generateX25519KeyPair(): X25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublicKey(publicKey), secretKey: rawSecretKey(privateKey) };
}

/** X25519(k, 9): the public key of a secret key (RFC 7748 section 6.1). Clamping is applied by X25519 itself. */
export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return rawPublicKey(createPublicKey(importSecretKey(secretKey)));
}

/**
 * X25519(k, u), RFC 7748 section 5. The peer's key is any 32 bytes (the top bit is masked, non-canonical
 * u are reduced, as section 5 requires). A low-order u gives the all-zero output, which RFC 7748
 * section 6.1 says to reject because the result no longer depends on our secret; OpenSSL refuses to
 * derive it, and the explicit check keeps the rule independent of that.
 */
/**
 * A secret key imported once for many agreements. Importing costs far more than the agreement itself
 * (about 1 ms against tens of microseconds here), and a site derives one key per neighbour with the same
 * secret, the server one per (dropped site, neighbour): prepare the secret once, then pass it to x25519,
 * deriveShareKey or deriveMaskSeed. Node keeps the key in OpenSSL memory until the KeyObject is collected.
 */
export function prepareX25519SecretKey(secretKey: Uint8Array): KeyObject {
  return importSecretKey(secretKey);
}

/** A secret key as raw bytes, or already prepared with prepareX25519SecretKey. */
export type X25519SecretKey = Uint8Array | KeyObject;

export function x25519(secretKey: X25519SecretKey, publicKey: Uint8Array): Uint8Array {
  const privateKey = secretKey instanceof Uint8Array ? importSecretKey(secretKey) : checkPreparedKey(secretKey);
  const peerKey = importPublicKey(publicKey);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: peerKey });
  } catch (error) {
    throw lowOrder(error);
  }
  let accumulator = 0;
  for (const byte of shared) accumulator |= byte;
  if (accumulator === 0) throw lowOrder(undefined);
  return new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
}

/**
 * Throws X25519_LOW_ORDER for a public key on which every X25519 agreement yields the all-zero secret (a
 * point of small order: clamped scalars are multiples of the cofactor 8, so one fixed scalar tells them
 * all apart). Lets a party refuse such a key when it is announced, before it deals anything to its owner.
 */
export function assertX25519PublicKey(publicKey: Uint8Array): void {
  x25519(lowOrderProbe(), publicKey);
}

let probe: KeyObject | undefined;
function lowOrderProbe(): KeyObject {
  probe ??= importSecretKey(new Uint8Array(X25519_KEY_LENGTH).fill(0x5a));
  return probe;
}

function lowOrder(cause: unknown): CryptoError {
  return new CryptoError(
    'INVALID_ARGUMENT',
    'X25519_LOW_ORDER',
    'publicKey is a low-order point: the X25519 shared secret is all zeros (RFC 7748 section 6.1), expected a valid peer key',
    { cause },
  );
}
