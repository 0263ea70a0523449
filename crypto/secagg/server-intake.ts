/**
 * The coordinator's validation of each stage's messages (DESIGN.md "Security model": bad input never
 * crashes the coordinator and never corrupts state). Each function checks one message completely -
 * lengths, membership, addressing, signature against the sender's certificate - and returns what the
 * server stores; it mutates nothing, so a rejected message leaves the round exactly as it was.
 */
import type { KeyObject } from 'node:crypto';
import { bytesEqual } from '../bytes.js';
import { SEALED_SHARE_OVERHEAD } from '../aead.js';
import { GRAPH_NONCE_LENGTH, type NeighbourGraph } from '../graph.js';
import { SHA256_LENGTH } from '../hash.js';
import { decodeShare, shareValueLength } from '../shamir.js';
import { verifyMessage } from '../signature.js';
import { X25519_KEY_LENGTH } from '../x25519.js';
import { tailLength, vectorLength, type RoundConfig } from './config.js';
import { secaggDenied, secaggInvalid, secaggPrecondition } from './errors.js';
import type {
  AdvertiseKeysMessage,
  CommitSignatureMessage,
  ConsistencySignatureMessage,
  MaskedInputMessage,
  NonceRevealMessage,
  OutgoingShare,
  RevealedShare,
  ShareKeysMessage,
  UnmaskResponseMessage,
} from './messages.js';
import { SECRET_LENGTH, shareCoordinate } from './neighbourhood.js';
import {
  advertiseTranscript,
  commitmentOf,
  consistencyTranscript,
  keyListTranscript,
  maskedInputTranscript,
  revealDigest,
  shareKeysTranscript,
  sharesDigest,
  unmaskTranscript,
  uploadHash,
  type RoundContext,
} from './transcript.js';

/** Encoded pair of shares (two encodeFields fields of u16 x || y) plus AES-GCM nonce and tag. */
export const SEALED_SHARE_PAIR_LENGTH = SEALED_SHARE_OVERHEAD + 2 * (4 + 2 + shareValueLength(SECRET_LENGTH));
const REVEALED_SHARE_LENGTH = 2 + shareValueLength(SECRET_LENGTH);

/** What the intake functions read from the round so far. */
export interface IntakeView {
  readonly config: RoundConfig;
  readonly context: RoundContext;
  readonly keyListHash?: Uint8Array;
  readonly members?: readonly string[];
  readonly graph?: NeighbourGraph;
  readonly shareSurvivors?: ReadonlySet<string>;
  readonly survivorDigest?: Uint8Array;
  readonly maskedSurvivors?: ReadonlySet<string>;
  /** Commitments H(r_u) of L, for the nonce reveal. */
  readonly nonceCommitments?: ReadonlyMap<string, Uint8Array>;
}

function bytesOf(value: unknown, length: number | undefined, field: string, context: { stage: string; site: string }): Uint8Array {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) {
    const expected = length === undefined ? 'bytes' : `${length} bytes`;
    const got = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw secaggInvalid('INVALID_LENGTH', `${field} must be ${expected}, got ${got}`, context);
  }
  return value;
}

function requireSignature(publicKey: KeyObject, transcript: Uint8Array, signature: unknown, field: string, context: { stage: string; site: string }): void {
  const bytes = bytesOf(signature, undefined, field, context);
  if (!verifyMessage(publicKey, transcript, bytes)) {
    throw secaggDenied('BAD_SIGNATURE', `${field} does not verify against the sender's certificate`, context);
  }
}

export function intakeAdvert(sender: string, message: AdvertiseKeysMessage, view: IntakeView, publicKey: KeyObject): AdvertiseKeysMessage {
  const context = { stage: 'advertise_keys', site: sender };
  const cipherPublicKey = bytesOf(message.cipherPublicKey, X25519_KEY_LENGTH, 'advertise_keys.cipherPublicKey', context);
  const maskPublicKey = bytesOf(message.maskPublicKey, X25519_KEY_LENGTH, 'advertise_keys.maskPublicKey', context);
  const nonceCommitment = bytesOf(message.nonceCommitment, SHA256_LENGTH, 'advertise_keys.nonceCommitment', context);
  if (bytesEqual(cipherPublicKey, maskPublicKey)) {
    throw secaggInvalid('INVALID_KEY', 'advertise_keys.cipherPublicKey and maskPublicKey must differ', context);
  }
  requireSignature(publicKey, advertiseTranscript(view.context, cipherPublicKey, maskPublicKey, nonceCommitment), message.signature, 'advertise_keys.signature', context);
  return { ...message, cipherPublicKey: copy(cipherPublicKey), maskPublicKey: copy(maskPublicKey), nonceCommitment: copy(nonceCommitment), signature: copy(message.signature) };
}

export function intakeNonce(sender: string, message: NonceRevealMessage, view: IntakeView, publicKey: KeyObject): { nonce: Uint8Array; keyListSignature: Uint8Array } {
  const context = { stage: 'nonce_reveal', site: sender };
  const nonce = bytesOf(message.nonce, GRAPH_NONCE_LENGTH, 'nonce_reveal.nonce', context);
  const commitment = view.nonceCommitments?.get(sender) as Uint8Array;
  if (!bytesEqual(commitmentOf(nonce), commitment)) {
    throw secaggInvalid('NONCE_MISMATCH', 'nonce_reveal.nonce does not match the sender\'s commitment H(r_u) in L', context);
  }
  requireSignature(publicKey, keyListTranscript(view.context, view.keyListHash as Uint8Array), message.keyListSignature, 'nonce_reveal.keyListSignature', context);
  return { nonce: copy(nonce), keyListSignature: copy(message.keyListSignature) };
}

export interface AcceptedShareKeys {
  readonly selfMaskCommitment: Uint8Array;
  readonly shares: ReadonlyMap<string, Uint8Array>;
}

export function intakeShareKeys(sender: string, message: ShareKeysMessage, view: IntakeView, publicKey: KeyObject): AcceptedShareKeys {
  const context = { stage: 'share_keys', site: sender };
  const graph = view.graph as NeighbourGraph;
  const selfMaskCommitment = bytesOf(message.selfMaskCommitment, SHA256_LENGTH, 'share_keys.selfMaskCommitment', context);
  if (!Array.isArray(message.shares)) throw secaggInvalid('MALFORMED_MESSAGE', 'share_keys.shares must be an array', context);
  const shares = new Map<string, Uint8Array>();
  for (const [index, share] of (message.shares as readonly OutgoingShare[]).entries()) {
    const receiver = share?.receiver;
    if (typeof receiver !== 'string' || !graph.isNeighbour(sender, receiver)) {
      throw secaggInvalid('SHARE_MISADDRESSED', `share_keys.shares[${index}] is addressed to ${JSON.stringify(receiver)}, which is not a neighbour of the sender`, context);
    }
    if (shares.has(receiver)) throw secaggInvalid('DUPLICATE_SHARE', `share_keys.shares holds two shares for ${JSON.stringify(receiver)}`, context);
    shares.set(receiver, copy(bytesOf(share.ciphertext, SEALED_SHARE_PAIR_LENGTH, `share_keys.shares[${index}].ciphertext`, context)));
  }
  const neighbours = graph.neighbours(sender);
  if (shares.size !== neighbours.length) {
    throw secaggInvalid('SHARE_MISSING', `share_keys.shares must hold one share per neighbour (${neighbours.length}), got ${shares.size}`, context);
  }
  requireSignature(publicKey, shareKeysTranscript(view.context, view.keyListHash as Uint8Array, selfMaskCommitment, sharesDigest(message.shares)), message.signature, 'share_keys.signature', context);
  return { selfMaskCommitment: copy(selfMaskCommitment), shares };
}

export interface AcceptedMaskedInput {
  readonly vector: Uint32Array;
  readonly survivorDigest: Uint8Array;
  readonly uploadHash: Uint8Array;
  readonly signature: Uint8Array;
}

export function intakeMaskedInput(sender: string, message: MaskedInputMessage, view: IntakeView, publicKey: KeyObject): AcceptedMaskedInput {
  const context = { stage: 'masked_input', site: sender };
  const expected = vectorLength(view.config);
  if (!(message.maskedVector instanceof Uint32Array) || message.maskedVector.length !== expected) {
    const got = message.maskedVector instanceof Uint32Array ? `${message.maskedVector.length} elements` : typeof message.maskedVector;
    throw secaggInvalid('INVALID_VECTOR_LENGTH', `masked_input.maskedVector must be a Uint32Array of d + ${tailLength(view.config)} = ${expected} elements, got ${got}`, context);
  }
  const digest = bytesOf(message.survivorDigest, SHA256_LENGTH, 'masked_input.survivorDigest', context);
  if (!bytesEqual(digest, view.survivorDigest as Uint8Array)) {
    throw secaggPrecondition('SURVIVOR_SET_MISMATCH', 'masked_input.survivorDigest is not H(U2) as announced', context);
  }
  const claimed = bytesOf(message.uploadHash, SHA256_LENGTH, 'masked_input.uploadHash', context);
  const actual = uploadHash(message.maskedVector);
  if (!bytesEqual(claimed, actual)) throw secaggInvalid('UPLOAD_HASH_MISMATCH', 'masked_input.uploadHash is not the SHA-256 of the uploaded vector', context);
  requireSignature(publicKey, maskedInputTranscript(view.context, view.keyListHash as Uint8Array, digest, actual), message.signature, 'masked_input.signature', context);
  return { vector: message.maskedVector, survivorDigest: copy(digest), uploadHash: actual, signature: copy(message.signature) };
}

export function intakeConsistency(sender: string, message: ConsistencySignatureMessage, view: IntakeView, publicKey: KeyObject): Uint8Array {
  const context = { stage: 'consistency_check', site: sender };
  const transcript = consistencyTranscript(view.context, view.keyListHash as Uint8Array, view.survivorDigest as Uint8Array, view.maskedSurvivors as ReadonlySet<string>);
  requireSignature(publicKey, transcript, message.signature, 'consistency_check.signature', context);
  return copy(message.signature);
}

/**
 * An Unmask answer: at most one share per dealer of the sender's closed neighbourhood in U2, of the
 * secret the survivor sets call for (b for U3 members, s_sk for the others), at the sender's x.
 */
export function intakeUnmask(sender: string, message: UnmaskResponseMessage, view: IntakeView, publicKey: KeyObject): RevealedShare[] {
  const context = { stage: 'unmask', site: sender };
  const graph = view.graph as NeighbourGraph;
  const shareSurvivors = view.shareSurvivors as ReadonlySet<string>;
  const maskedSurvivors = view.maskedSurvivors as ReadonlySet<string>;
  if (!Array.isArray(message.shares)) throw secaggInvalid('MALFORMED_MESSAGE', 'unmask.shares must be an array', context);
  const x = shareCoordinate(view.members as readonly string[], sender);
  const dealers = new Set<string>();
  const accepted: RevealedShare[] = [];
  for (const [index, revealed] of (message.shares as readonly RevealedShare[]).entries()) {
    const dealer = revealed?.dealer;
    if (typeof dealer !== 'string' || !shareSurvivors.has(dealer) || !(dealer === sender || graph.isNeighbour(sender, dealer))) {
      throw secaggInvalid('SHARE_MISADDRESSED', `unmask.shares[${index}] is for ${JSON.stringify(dealer)}, whose shares the sender does not hold`, context);
    }
    if (dealers.has(dealer)) throw secaggInvalid('DUPLICATE_SHARE', `unmask.shares holds two shares of ${JSON.stringify(dealer)}`, context);
    const expected = maskedSurvivors.has(dealer) ? 'self_mask' : 'mask_key';
    if (revealed.secret !== expected) {
      throw secaggInvalid('UNEXPECTED_SHARE', `unmask.shares[${index}] reveals ${JSON.stringify(revealed.secret)} of ${JSON.stringify(dealer)}; only its ${expected} share is called for`, context);
    }
    const bytes = bytesOf(revealed.share, REVEALED_SHARE_LENGTH, `unmask.shares[${index}].share`, context);
    if (decodeShare(bytes, SECRET_LENGTH).x !== x) {
      throw secaggInvalid('INVALID_SHARE', `unmask.shares[${index}] is at x = ${decodeShare(bytes, SECRET_LENGTH).x}, the sender holds x = ${x}`, context);
    }
    dealers.add(dealer);
    accepted.push({ dealer, secret: expected, share: copy(bytes) });
  }
  const transcript = unmaskTranscript(view.context, view.keyListHash as Uint8Array, view.survivorDigest as Uint8Array, maskedSurvivors, revealDigest(message.shares));
  requireSignature(publicKey, transcript, message.signature, 'unmask.signature', context);
  return accepted;
}

export function commitFieldsOf(message: CommitSignatureMessage, sender: string): void {
  const context = { stage: 'commit', site: sender };
  for (const field of ['previousModelHash', 'aggregateHash', 'newModelHash', 'optimizerStateHash', 'signature'] as const) {
    bytesOf(message[field], field === 'signature' ? undefined : SHA256_LENGTH, `commit.${field}`, context);
  }
}

/** sum += vector (mod 2^32), element by element: the hot loop of MaskedInput intake. */
export function accumulate(sum: Uint32Array, vector: Uint32Array): void {
  const length = sum.length;
  for (let i = 0; i < length; i++) sum[i] = ((sum[i] as number) + (vector[i] as number)) >>> 0;
}

function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
