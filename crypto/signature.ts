/**
 * Signatures of the round protocol (DESIGN.md, "A round"): RSA-PSS (RFC 8017 section 8.1) with SHA-256,
 * MGF1-SHA-256 and a 32-byte salt, under the key of the site's mTLS certificate. What is signed is always
 * `canonicalMessage(...)`: a domain-separated, length-prefixed byte string, never protobuf or JSON bytes
 * (whose encodings are not unique).
 */
import { constants, sign, verify, type KeyObject } from 'node:crypto';
import { assertBytes, encodeFields, utf8 } from './bytes.js';
import { describeValue, invalidArgument } from './errors.js';
import { SHA256_LENGTH } from './hash.js';

/** PSS salt length = hash length, the RFC 8017 section 9.1 recommendation. */
export const PSS_SALT_LENGTH = 32;

const STAGE = /^[a-z][a-z0-9_-]*$/;

function assertRsaKey(key: unknown, name: string, type: 'private' | 'public'): asserts key is KeyObject {
  const isKeyObject =
    typeof key === 'object' && key !== null && 'asymmetricKeyType' in key && 'type' in key && 'export' in key;
  const keyObject = key as KeyObject;
  if (!isKeyObject || keyObject.type !== type || (keyObject.asymmetricKeyType !== 'rsa' && keyObject.asymmetricKeyType !== 'rsa-pss')) {
    const got = isKeyObject ? `${keyObject.type} ${keyObject.asymmetricKeyType ?? 'unknown'} key` : describeValue(key);
    throw invalidArgument('INVALID_KEY', `${name} must be an RSA ${type} KeyObject, got ${got}`);
  }
}

const PSS_OPTIONS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH } as const;

/** RSASSA-PSS signature of `message` (RFC 8017 section 8.1.1); MGF1 uses the message digest, SHA-256. */
export function signMessage(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  assertRsaKey(privateKey, 'privateKey', 'private');
  assertBytes(message, 'message');
  return new Uint8Array(sign('sha256', message, { key: privateKey, ...PSS_OPTIONS }));
}

/**
 * RSASSA-PSS verification (RFC 8017 section 8.1.2) with the exact salt length. A signature of the wrong
 * length or otherwise malformed is simply invalid: false, not an exception.
 *
 * The length is checked here, not left to OpenSSL: RFC 8017 requires a signature of exactly k bytes (the
 * modulus length), but OpenSSL reads a shorter one as a big-endian integer, so a signature whose first byte
 * happens to be 0x00 (one in 256) would also verify with that byte dropped. One signature would then have
 * two valid spellings, and commit records, whose hashes cover their signatures, two valid encodings.
 */
export function verifyMessage(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  assertRsaKey(publicKey, 'publicKey', 'public');
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
  const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength;
  if (modulusBits === undefined || signature.length !== Math.ceil(modulusBits / 8)) return false;
  try {
    return verify('sha256', message, { key: publicKey, ...PSS_OPTIONS }, signature);
  } catch {
    return false;
  }
}

/**
 * The bytes every protocol signature covers (DESIGN.md, "A round"):
 * encodeFields(["fedgate/v1/" + stage, federation id, round id, H(RoundConfig), ...fields]).
 * The stage label separates the domains of the different signed messages, so a signature from one
 * stage can never be replayed as another.
 */
export function canonicalMessage(
  stage: string,
  federationId: string,
  roundId: Uint8Array,
  roundConfigHash: Uint8Array,
  fields: readonly Uint8Array[],
): Uint8Array {
  if (typeof stage !== 'string' || !STAGE.test(stage)) {
    throw invalidArgument('INVALID_STAGE', `stage must be a lower-case identifier such as "advertise_keys", got ${JSON.stringify(stage)}`);
  }
  if (typeof federationId !== 'string' || federationId.length === 0) {
    throw invalidArgument('INVALID_FEDERATION_ID', `federationId must be a non-empty string, got ${JSON.stringify(federationId)}`);
  }
  assertBytes(roundId, 'roundId');
  if (roundId.length === 0) throw invalidArgument('INVALID_LENGTH', 'roundId must not be empty');
  assertBytes(roundConfigHash, 'roundConfigHash', SHA256_LENGTH);
  if (!Array.isArray(fields)) {
    throw invalidArgument('INVALID_FIELDS', `fields must be an array of Uint8Array, got ${describeValue(fields)}`);
  }
  for (const [index, field] of fields.entries()) assertBytes(field, `fields[${index}]`);
  return encodeFields([utf8(`fedgate/v1/${stage}`), utf8(federationId), roundId, roundConfigHash, ...fields]);
}
