/**
 * The canonical byte strings of the round: what each stage signs and the digests those signatures
 * bind (DESIGN.md "A round": every signature is over "fedgate/v1/<stage>" || federation id || round id ||
 * H(RoundConfig) || length-prefixed fields; every signature after the graph covers H(L)). Both state
 * machines build signed bytes only here, so a site and the coordinator cannot disagree on them.
 */
import { compareBytes, encodeFields, utf8 } from '../bytes.js';
import { sha256 } from '../hash.js';
import { canonicalMessage } from '../signature.js';
import { compareSiteIds } from '../graph.js';
import { roundConfigHash } from './config-codec.js';
import type { RoundConfig } from './config.js';
import { encodeSiteIdSet } from './fields.js';
import type { CommitHashes, KeyListEntry, OutgoingShare, RevealedShare } from './messages.js';
import { SIGNED_STAGE } from './stages.js';
import { vectorToLittleEndianBytes } from './vector-bytes.js';

/** What every signature of one round starts with. */
export interface RoundContext {
  readonly federationId: string;
  readonly roundId: Uint8Array;
  readonly roundConfigHash: Uint8Array;
}

export function roundContext(config: RoundConfig): RoundContext {
  return { federationId: config.federationId, roundId: config.roundId, roundConfigHash: roundConfigHash(config) };
}

function signed(context: RoundContext, stage: string, fields: readonly Uint8Array[]): Uint8Array {
  return canonicalMessage(stage, context.federationId, context.roundId, context.roundConfigHash, fields);
}

/** Step 2, AdvertiseKeys: (c_pk, s_pk, H(r_u)). */
export function advertiseTranscript(context: RoundContext, cipherPublicKey: Uint8Array, maskPublicKey: Uint8Array, nonceCommitment: Uint8Array): Uint8Array {
  return signed(context, SIGNED_STAGE.advertiseKeys, [cipherPublicKey, maskPublicKey, nonceCommitment]);
}

/** Step 2, graph: H(L), signed before r_u is revealed. */
export function keyListTranscript(context: RoundContext, keyListHash: Uint8Array): Uint8Array {
  return signed(context, SIGNED_STAGE.keyList, [keyListHash]);
}

/** Step 3, ShareKeys: (H(L), H(b), digest of the sealed shares). */
export function shareKeysTranscript(context: RoundContext, keyListHash: Uint8Array, selfMaskCommitment: Uint8Array, sharesDigest: Uint8Array): Uint8Array {
  return signed(context, SIGNED_STAGE.shareKeys, [keyListHash, selfMaskCommitment, sharesDigest]);
}

/** Step 4, the MaskedInput closing: (H(L), H(U2), upload hash). */
export function maskedInputTranscript(context: RoundContext, keyListHash: Uint8Array, survivorDigest: Uint8Array, uploadHash: Uint8Array): Uint8Array {
  return signed(context, SIGNED_STAGE.maskedInput, [keyListHash, survivorDigest, uploadHash]);
}

/** Step 5, ConsistencyCheck: (H(L), H(U2), sorted U3). */
export function consistencyTranscript(context: RoundContext, keyListHash: Uint8Array, survivorDigest: Uint8Array, maskedSurvivors: Iterable<string>): Uint8Array {
  return signed(context, SIGNED_STAGE.consistencyCheck, [keyListHash, survivorDigest, encodeSiteIdSet(maskedSurvivors)]);
}

/** Step 6, Unmask answer: (H(L), H(U2), sorted U3, digest of the revealed shares). */
export function unmaskTranscript(
  context: RoundContext,
  keyListHash: Uint8Array,
  survivorDigest: Uint8Array,
  maskedSurvivors: Iterable<string>,
  revealDigest: Uint8Array,
): Uint8Array {
  return signed(context, SIGNED_STAGE.unmask, [keyListHash, survivorDigest, encodeSiteIdSet(maskedSurvivors), revealDigest]);
}

/** Step 7, Commit: (H(L), previous model hash, aggregate hash, new model hash, optimiser state hash, sorted U3). */
export function commitTranscript(context: RoundContext, keyListHash: Uint8Array, hashes: CommitHashes, maskedSurvivors: Iterable<string>): Uint8Array {
  return signed(context, SIGNED_STAGE.commit, [
    keyListHash,
    hashes.previousModelHash,
    hashes.aggregateHash,
    hashes.newModelHash,
    hashes.optimizerStateHash,
    encodeSiteIdSet(maskedSurvivors),
  ]);
}

/** H(r_u) and H(b): plain SHA-256 of the 32-byte secret. */
export function commitmentOf(secret: Uint8Array): Uint8Array {
  return sha256(secret);
}

/** H(advert): binds the site id and the exact signed advert (keys, nonce commitment, signature). */
export function advertDigest(siteId: string, cipherPublicKey: Uint8Array, maskPublicKey: Uint8Array, nonceCommitment: Uint8Array, signature: Uint8Array): Uint8Array {
  return sha256(encodeFields([utf8('fedgate/v1/advert'), utf8(siteId), cipherPublicKey, maskPublicKey, nonceCommitment, signature]));
}

/** Canonical bytes of L: entries in site id order, three fields each. */
export function encodeKeyList(entries: readonly KeyListEntry[]): Uint8Array {
  const ordered = [...entries].sort((a, b) => compareBytes(utf8(a.siteId), utf8(b.siteId)));
  return encodeFields([
    utf8('fedgate/v1/key-list'),
    ...ordered.flatMap((entry) => [utf8(entry.siteId), entry.advertDigest, entry.nonceCommitment]),
  ]);
}

/** H(L). */
export function keyListHash(entries: readonly KeyListEntry[]): Uint8Array {
  return sha256(encodeKeyList(entries));
}

/** H(U2): the survivor set after ShareKeys as one digest. */
export function survivorDigest(survivors: Iterable<string>): Uint8Array {
  return sha256(encodeFields([utf8('fedgate/v1/survivors'), encodeSiteIdSet(survivors)]));
}

/** Digest of the sealed shares of one ShareKeys message, in receiver order. */
export function sharesDigest(shares: readonly OutgoingShare[]): Uint8Array {
  const ordered = [...shares].sort((a, b) => compareBytes(utf8(a.receiver), utf8(b.receiver)));
  return sha256(encodeFields([utf8('fedgate/v1/sealed-shares'), ...ordered.flatMap((share) => [utf8(share.receiver), share.ciphertext])]));
}

/** Digest of the shares of one Unmask answer, in dealer order (a dealer appears at most once). */
export function revealDigest(shares: readonly RevealedShare[]): Uint8Array {
  const ordered = [...shares].sort((a, b) => compareSiteIds(a.dealer, b.dealer));
  return sha256(
    encodeFields([utf8('fedgate/v1/revealed-shares'), ...ordered.flatMap((share) => [utf8(share.dealer), utf8(share.secret), share.share])]),
  );
}

/**
 * The upload bytes of a masked vector: its uint32 elements little-endian (vector-bytes.ts). On
 * little-endian hosts a view of the vector itself (no copy of a multi-megabyte buffer).
 */
export function uploadBytes(vector: Uint32Array): Uint8Array {
  return vectorToLittleEndianBytes(vector);
}

/** SHA-256 of the upload bytes, the hash the MaskedInput closing signs. */
export function uploadHash(vector: Uint32Array): Uint8Array {
  return sha256(uploadBytes(vector));
}
