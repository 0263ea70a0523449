/**
 * The plain messages of the SecAgg+ round (DESIGN.md "A round", steps 2-7), as the state machines take
 * and return them. No transport, no encoding: proto/ maps them onto federation.proto. Every message
 * carries its `stage` and the round id, so that a message of another stage or another round is refused
 * before anything else is looked at. Site ids never travel as a claim of who sent a message: the sender
 * is the authenticated certificate CN, passed to the server beside the message.
 *
 * Naming follows Bonawitz et al., CCS 2017, Fig. 4: c = the key pair that encrypts shares, s = the key
 * pair whose agreement seeds the pairwise masks, b = the self-mask seed, r_u = the graph nonce.
 * Stage names are defined once, in stages.ts.
 */

import type { STAGE } from './stages.js';

export type { ClientStage, ServerStage } from './stages.js';

/** Round 0 (AdvertiseKeys): the site's two fresh X25519 public keys and its graph-nonce commitment, signed. */
export interface AdvertiseKeysMessage {
  readonly stage: typeof STAGE.advertiseKeys;
  readonly roundId: Uint8Array;
  /** c_pk: agreement key for share encryption (32 bytes). */
  readonly cipherPublicKey: Uint8Array;
  /** s_pk: agreement key for pairwise masks (32 bytes). */
  readonly maskPublicKey: Uint8Array;
  /** H(r_u) = SHA-256 of the 32-byte graph nonce. */
  readonly nonceCommitment: Uint8Array;
  /** RSA-PSS over the advertise_keys transcript. */
  readonly signature: Uint8Array;
}

/** One entry of L: who advertised, the digest of its signed advert and its nonce commitment. */
export interface KeyListEntry {
  readonly siteId: string;
  readonly advertDigest: Uint8Array;
  readonly nonceCommitment: Uint8Array;
}

/** L for U1, the same for every site, in site id order. */
export interface KeyListMessage {
  readonly stage: typeof STAGE.keyList;
  readonly roundId: Uint8Array;
  readonly entries: readonly KeyListEntry[];
}

/** The site's signature over H(L) and, only after it, its nonce r_u. */
export interface NonceRevealMessage {
  readonly stage: typeof STAGE.nonceReveal;
  readonly roundId: Uint8Array;
  readonly keyListSignature: Uint8Array;
  readonly nonce: Uint8Array;
}

/** What a site learns about one neighbour before ShareKeys. */
export interface NeighbourRecord {
  readonly siteId: string;
  readonly advert: AdvertiseKeysMessage;
  /** The neighbour's signature over H(L). */
  readonly keyListSignature: Uint8Array;
  /** The neighbour's certificate, DER or PEM. */
  readonly certificate: Uint8Array | string;
}

export interface SiteNonce {
  readonly siteId: string;
  readonly nonce: Uint8Array;
}

/** Every r_u of U1, and the site's neighbours (under the graph those nonces seed) with the current CRL. */
export interface GraphMessage {
  readonly stage: typeof STAGE.graph;
  readonly roundId: Uint8Array;
  readonly nonces: readonly SiteNonce[];
  readonly neighbours: readonly NeighbourRecord[];
  /** Serials revoked by the federation CA (upper-case hex), added to what the site already knows. */
  readonly revokedSerials: readonly string[];
}

/** One neighbour's pair of Shamir shares, sealed to it (sealShare output). */
export interface OutgoingShare {
  readonly receiver: string;
  readonly ciphertext: Uint8Array;
}

/** Round 1 (ShareKeys): the commitment H(b) and one sealed share pair per neighbour, signed. */
export interface ShareKeysMessage {
  readonly stage: typeof STAGE.shareKeys;
  readonly roundId: Uint8Array;
  /** H(b) = SHA-256 of the self-mask seed. */
  readonly selfMaskCommitment: Uint8Array;
  readonly shares: readonly OutgoingShare[];
  readonly signature: Uint8Array;
}

export interface RoutedShare {
  readonly sender: string;
  readonly receiver: string;
  readonly ciphertext: Uint8Array;
}

/** U2 and the ciphertexts addressed to this site by members of U2. */
export interface ShareDeliveryMessage {
  readonly stage: typeof STAGE.shareDelivery;
  readonly roundId: Uint8Array;
  readonly survivors: readonly string[];
  readonly shares: readonly RoutedShare[];
}

/** Round 2 (MaskedInput): the masked vector and its signed closing (H(L), H(U2), upload hash). */
export interface MaskedInputMessage {
  readonly stage: typeof STAGE.maskedInput;
  readonly roundId: Uint8Array;
  /** Quantized update plus masks, mod 2^32; uploaded as little-endian uint32. */
  readonly maskedVector: Uint32Array;
  /** H(U2) as this site saw it. */
  readonly survivorDigest: Uint8Array;
  /** SHA-256 of the upload bytes. */
  readonly uploadHash: Uint8Array;
  readonly signature: Uint8Array;
}

/** A member of U3's signed closing, forwarded to the others. */
export interface MaskedInputClosing {
  readonly siteId: string;
  readonly survivorDigest: Uint8Array;
  readonly uploadHash: Uint8Array;
  readonly signature: Uint8Array;
}

/** Round 3 (ConsistencyCheck) request: U3 with each member's signed closing. */
export interface ConsistencyRequestMessage {
  readonly stage: typeof STAGE.consistencyRequest;
  readonly roundId: Uint8Array;
  readonly survivors: readonly string[];
  readonly closings: readonly MaskedInputClosing[];
}

/** The site's signature over (H(L), H(U2), sorted U3). */
export interface ConsistencySignatureMessage {
  readonly stage: typeof STAGE.consistencyCheck;
  readonly roundId: Uint8Array;
  readonly signature: Uint8Array;
}

export interface ConsistencySignature {
  readonly siteId: string;
  readonly signature: Uint8Array;
}

/** Round 4 (Unmask) request: the consistency signatures collected from U3. */
export interface UnmaskRequestMessage {
  readonly stage: typeof STAGE.unmaskRequest;
  readonly roundId: Uint8Array;
  readonly signatures: readonly ConsistencySignature[];
}

/** Which secret of its dealer a revealed share belongs to: b (self mask) or s_sk (mask key). */
export type RevealedSecret = 'self_mask' | 'mask_key';

export interface RevealedShare {
  readonly dealer: string;
  readonly secret: RevealedSecret;
  /** encodeShare output: u16 x || y. */
  readonly share: Uint8Array;
}

/** Round 4 (Unmask) answer: at most one share per dealer, signed. */
export interface UnmaskResponseMessage {
  readonly stage: typeof STAGE.unmask;
  readonly roundId: Uint8Array;
  readonly shares: readonly RevealedShare[];
  readonly signature: Uint8Array;
}

/** What a Commit signature attests besides H(L) and U3 (DESIGN.md step 7). */
export interface CommitHashes {
  readonly previousModelHash: Uint8Array;
  readonly aggregateHash: Uint8Array;
  readonly newModelHash: Uint8Array;
  readonly optimizerStateHash: Uint8Array;
}

export interface CommitRequestMessage extends CommitHashes {
  readonly stage: typeof STAGE.commitRequest;
  readonly roundId: Uint8Array;
}

export interface CommitSignatureMessage extends CommitHashes {
  readonly stage: typeof STAGE.commit;
  readonly roundId: Uint8Array;
  readonly signature: Uint8Array;
}

export type ClientMessage =
  | AdvertiseKeysMessage
  | NonceRevealMessage
  | ShareKeysMessage
  | MaskedInputMessage
  | ConsistencySignatureMessage
  | UnmaskResponseMessage
  | CommitSignatureMessage;

export type ServerMessage =
  | KeyListMessage
  | GraphMessage
  | ShareDeliveryMessage
  | ConsistencyRequestMessage
  | UnmaskRequestMessage
  | CommitRequestMessage;
