/**
 * Pairwise key agreement of SecAgg (Bonawitz et al. 2017, section 4, rounds 1 and 2; Bell et al. 2020,
 * Algorithm 2) as fixed by DESIGN.md steps 3 and 4: a directed key that encrypts the Shamir shares one
 * site sends another, and an undirected seed for the pairwise mask both sites expand with the PRG.
 * Binding round id and both identities into HKDF's info gives every (round, pair) independent keys even
 * if a site were to reuse an X25519 key.
 */
import { assertBytes, compareBytes, concatBytes, encodeFields, utf8, zeroize } from './bytes.js';
import { hkdf } from './hkdf.js';
import { invalidArgument } from './errors.js';
import { x25519, type X25519SecretKey } from './x25519.js';

const SHARE_LABEL = utf8('fedgate/v1/share');
const MASK_LABEL = utf8('fedgate/v1/mask');
const EMPTY_SALT = new Uint8Array(0);

/** Length of share keys and mask seeds in bytes. */
export const AGREED_KEY_LENGTH = 32;

function siteIdBytes(siteId: string, name: string): Uint8Array {
  if (typeof siteId !== 'string' || siteId.length === 0) {
    throw invalidArgument('INVALID_SITE_ID', `${name} must be a non-empty site id string, got ${JSON.stringify(siteId)}`);
  }
  return utf8(siteId);
}

/** Associated data of an encrypted share: encodeFields([roundId, sender, receiver]) (DESIGN.md step 3). */
export function shareAssociatedData(roundId: Uint8Array, sender: string, receiver: string): Uint8Array {
  assertBytes(roundId, 'roundId');
  return encodeFields([roundId, siteIdBytes(sender, 'sender'), siteIdBytes(receiver, 'receiver')]);
}

/**
 * AES-256-GCM key for the shares `sender` encrypts to `receiver` (DESIGN.md step 3):
 * HKDF(X25519(c_sk, peer c_pk), salt = empty, info = "fedgate/v1/share" || fields(round id, sender, receiver), 32).
 * The sender calls it with its own c secret key and the receiver's c public key; the receiver with its
 * own secret key and the sender's public key, and the same (sender, receiver) order.
 */
export function deriveShareKey(
  cSecretKey: X25519SecretKey,
  peerCPublicKey: Uint8Array,
  roundId: Uint8Array,
  sender: string,
  receiver: string,
): Uint8Array {
  const info = concatBytes(SHARE_LABEL, shareAssociatedData(roundId, sender, receiver));
  const shared = x25519(cSecretKey, peerCPublicKey);
  try {
    return hkdf(shared, EMPTY_SALT, info, AGREED_KEY_LENGTH);
  } finally {
    zeroize(shared);
  }
}

/**
 * Seed s_uv of the pairwise mask between `siteA` and `siteB` (DESIGN.md step 4):
 * HKDF(X25519(s_sk, peer s_pk), salt = empty, info = "fedgate/v1/mask" || fields(round id, min, max), 32),
 * where min/max order the UTF-8 ids bytewise, so both sites derive the same seed whatever order they pass.
 */
export function deriveMaskSeed(
  sSecretKey: X25519SecretKey,
  peerSPublicKey: Uint8Array,
  roundId: Uint8Array,
  siteA: string,
  siteB: string,
): Uint8Array {
  assertBytes(roundId, 'roundId');
  const a = siteIdBytes(siteA, 'siteA');
  const b = siteIdBytes(siteB, 'siteB');
  const order = compareBytes(a, b);
  if (order === 0) {
    throw invalidArgument('INVALID_SITE_ID', `siteA and siteB must differ, got ${JSON.stringify(siteA)} twice`);
  }
  const [low, high] = order < 0 ? [a, b] : [b, a];
  const info = concatBytes(MASK_LABEL, encodeFields([roundId, low, high]));
  const shared = x25519(sSecretKey, peerSPublicKey);
  try {
    return hkdf(shared, EMPTY_SALT, info, AGREED_KEY_LENGTH);
  } finally {
    zeroize(shared);
  }
}
