/**
 * The site's side of AdvertiseKeys and of the graph exchange (DESIGN.md step 2; Bonawitz et al., CCS
 * 2017, Fig. 4, round 0; Bell et al., CCS 2020, section 3 for the graph). Three steps:
 * 1. make two fresh X25519 pairs (c for share encryption, s for masks) and a nonce r_u; sign
 *    (c_pk, s_pk, H(r_u));
 * 2. check its own entry in L, sign H(L), and only then reveal r_u;
 * 3. check every r_v against H(r_v) in L, derive the seed and the graph, and verify each neighbour: its
 *    certificate (CA, validity, CRL, role, identity), its advert against L and its signatures over this
 *    site's H(RoundConfig) and H(L).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { bytesEqual } from '../bytes.js';
import { normalizeSerial, verifyPeerCertificate, type TrustAnchor } from '../certificate.js';
import { CryptoError } from '../errors.js';
import { GRAPH_NONCE_LENGTH, buildNeighbourGraph, compareSiteIds, graphSeed, type NeighbourGraph } from '../graph.js';
import { SHA256_LENGTH } from '../hash.js';
import { signMessage, verifyMessage } from '../signature.js';
import { X25519_KEY_LENGTH, assertX25519PublicKey, generateX25519KeyPair, type X25519KeyPair } from '../x25519.js';
import type { RoundConfig } from './config.js';
import { secaggDenied, secaggInvalid, secaggPrecondition } from './errors.js';
import type { AdvertiseKeysMessage, GraphMessage, KeyListEntry, KeyListMessage } from './messages.js';
import { advertDigest, advertiseTranscript, commitmentOf, keyListHash, keyListTranscript, type RoundContext } from './transcript.js';

export interface RoundKeys {
  /** c: the pair whose agreement keys the sealed shares. */
  readonly cipher: X25519KeyPair;
  /** s: the pair whose agreement seeds the pairwise masks. */
  readonly mask: X25519KeyPair;
  /** r_u. */
  readonly nonce: Uint8Array;
}

/** Round 0: fresh keys and nonce, and the signed advert. */
export function createAdvert(context: RoundContext, signingKey: KeyObject): { keys: RoundKeys; advert: AdvertiseKeysMessage } {
  const keys: RoundKeys = { cipher: generateX25519KeyPair(), mask: generateX25519KeyPair(), nonce: new Uint8Array(randomBytes(GRAPH_NONCE_LENGTH)) };
  const nonceCommitment = commitmentOf(keys.nonce);
  const signature = signMessage(signingKey, advertiseTranscript(context, keys.cipher.publicKey, keys.mask.publicKey, nonceCommitment));
  return {
    keys,
    advert: {
      stage: 'advertise_keys',
      roundId: context.roundId,
      cipherPublicKey: keys.cipher.publicKey,
      maskPublicKey: keys.mask.publicKey,
      nonceCommitment,
      signature,
    },
  };
}

export interface AcceptedKeyList {
  /** U1 in id order. */
  readonly members: readonly string[];
  readonly entries: ReadonlyMap<string, KeyListEntry>;
  /** H(L). */
  readonly hash: Uint8Array;
}

/**
 * Checks L: well formed, members of U only, in id order, and this site's own entry exactly as it sent
 * it (a coordinator that altered it would be signing this site up for keys it never made).
 */
export function acceptKeyList(
  message: KeyListMessage,
  config: RoundConfig,
  self: string,
  ownAdvert: AdvertiseKeysMessage,
  minParticipants: number,
): AcceptedKeyList {
  const context = { stage: 'key_list', site: self } as const;
  if (!Array.isArray(message.entries)) throw secaggInvalid('MALFORMED_MESSAGE', 'key_list.entries must be an array', context);
  const entries = new Map<string, KeyListEntry>();
  let previous: string | undefined;
  for (const [index, entry] of message.entries.entries()) {
    if (typeof entry?.siteId !== 'string' || !config.participants.includes(entry.siteId)) {
      throw secaggPrecondition('KEY_LIST_INVALID', `key_list.entries[${index}].siteId ${JSON.stringify(entry?.siteId)} is not a member of U`, context);
    }
    if (previous !== undefined && compareSiteIds(previous, entry.siteId) >= 0) {
      throw secaggInvalid('KEY_LIST_INVALID', `key_list.entries must be distinct and in site id order; ${JSON.stringify(entry.siteId)} follows ${JSON.stringify(previous)}`, context);
    }
    if (!(entry.advertDigest instanceof Uint8Array) || entry.advertDigest.length !== SHA256_LENGTH || !(entry.nonceCommitment instanceof Uint8Array) || entry.nonceCommitment.length !== SHA256_LENGTH) {
      throw secaggInvalid('KEY_LIST_INVALID', `key_list.entries[${index}] must carry 32-byte advertDigest and nonceCommitment`, context);
    }
    entries.set(entry.siteId, entry);
    previous = entry.siteId;
  }
  const own = entries.get(self);
  const expectedDigest = advertDigest(self, ownAdvert.cipherPublicKey, ownAdvert.maskPublicKey, ownAdvert.nonceCommitment, ownAdvert.signature);
  if (own === undefined || !bytesEqual(own.advertDigest, expectedDigest) || !bytesEqual(own.nonceCommitment, ownAdvert.nonceCommitment)) {
    throw secaggPrecondition('OWN_ENTRY_MISMATCH', "key_list does not carry this site's advert and nonce commitment as it sent them", context);
  }
  const members = [...entries.keys()];
  if (members.length < minParticipants) {
    throw secaggPrecondition('TOO_FEW_SURVIVORS', `|U1| = ${members.length} is below this site's minimum of ${minParticipants}`, context);
  }
  const holders = Math.min(config.neighbourDegree + 1, members.length);
  if (holders < config.reconstructionThreshold) {
    throw secaggPrecondition('INSUFFICIENT_SHARE_HOLDERS', `closed neighbourhoods of ${holders} sites cannot hold t = ${config.reconstructionThreshold} shares`, context);
  }
  return { members, entries, hash: keyListHash(message.entries) };
}

/** Sign H(L) (the signature is sent with the nonce, after the check above). */
export function signKeyList(context: RoundContext, signingKey: KeyObject, hash: Uint8Array): Uint8Array {
  return signMessage(signingKey, keyListTranscript(context, hash));
}

export interface VerifiedNeighbour {
  readonly siteId: string;
  readonly cipherPublicKey: Uint8Array;
  readonly maskPublicKey: Uint8Array;
  /** Key of the neighbour's certificate, for its later signatures. */
  readonly signingPublicKey: KeyObject;
}

export interface VerifiedGraph {
  readonly graph: NeighbourGraph;
  readonly neighbours: ReadonlyMap<string, VerifiedNeighbour>;
}

export interface GraphCheckInput {
  readonly self: string;
  readonly context: RoundContext;
  readonly config: RoundConfig;
  readonly keyList: AcceptedKeyList;
  readonly ownNonce: Uint8Array;
  readonly trust: TrustAnchor;
  readonly now: Date;
}

/** Step 3 of the graph exchange: nonces, seed, graph and every neighbour's identity and adverts. */
export function verifyGraph(message: GraphMessage, input: GraphCheckInput): VerifiedGraph {
  const { self, keyList, config } = input;
  const context = { stage: 'graph', site: self } as const;
  if (!Array.isArray(message.nonces) || !Array.isArray(message.neighbours) || !Array.isArray(message.revokedSerials)) {
    throw secaggInvalid('MALFORMED_MESSAGE', 'graph message must carry nonces, neighbours and revokedSerials arrays', context);
  }
  const nonces = new Map<string, Uint8Array>();
  for (const { siteId, nonce } of message.nonces) {
    const entry = keyList.entries.get(siteId);
    if (entry === undefined || nonces.has(siteId)) {
      throw secaggPrecondition('NONCE_UNEXPECTED', `graph.nonces holds a nonce for ${JSON.stringify(siteId)}, which is not a (single) member of U1`, context);
    }
    if (!(nonce instanceof Uint8Array) || nonce.length !== GRAPH_NONCE_LENGTH || !bytesEqual(commitmentOf(nonce), entry.nonceCommitment)) {
      throw secaggPrecondition('NONCE_MISMATCH', `the nonce of ${JSON.stringify(siteId)} does not match its commitment H(r_v) in L`, context);
    }
    nonces.set(siteId, nonce);
  }
  for (const member of keyList.members) {
    if (!nonces.has(member)) {
      throw secaggPrecondition('NONCE_WITHHELD', `the nonce of U1 member ${JSON.stringify(member)} is missing; the graph cannot be derived and the round must abort`, context);
    }
  }
  if (!bytesEqual(nonces.get(self) as Uint8Array, input.ownNonce)) {
    throw secaggPrecondition('NONCE_MISMATCH', "graph.nonces does not carry this site's own nonce", context);
  }
  const graph = buildNeighbourGraph(graphSeed(input.context.roundConfigHash, keyList.hash, nonces, keyList.members), keyList.members, config.neighbourDegree);
  const expected = graph.neighbours(self);
  const given = message.neighbours.map((record) => record.siteId);
  if (given.length !== expected.length || new Set(given).size !== given.length || !expected.every((siteId) => given.includes(siteId))) {
    throw secaggPrecondition('GRAPH_MISMATCH', `graph.neighbours lists ${given.length} sites that are not this site's ${expected.length} neighbours under the seed derived from the nonces`, context);
  }
  const trust: TrustAnchor = {
    caCertificate: input.trust.caCertificate,
    revokedSerials: new Set([...input.trust.revokedSerials, ...message.revokedSerials.map((serial) => normalizeSerial(serial))]),
  };
  const neighbours = new Map<string, VerifiedNeighbour>();
  for (const record of message.neighbours) {
    neighbours.set(record.siteId, verifyNeighbour(record, input, trust));
  }
  return { graph, neighbours };
}

function verifyNeighbour(record: GraphMessage['neighbours'][number], input: GraphCheckInput, trust: TrustAnchor): VerifiedNeighbour {
  const context = { stage: 'graph', site: input.self } as const;
  const who = JSON.stringify(record.siteId);
  let signingPublicKey: KeyObject;
  try {
    signingPublicKey = verifyPeerCertificate(record.certificate, trust, input.now, { siteId: record.siteId, role: 'participant' }).publicKey;
  } catch (cause) {
    const reason = cause instanceof CryptoError ? cause.reason : 'CERTIFICATE_INVALID';
    throw secaggDenied(reason, `the certificate of neighbour ${who} was rejected: ${cause instanceof Error ? cause.message : String(cause)}`, { ...context, cause });
  }
  const { advert } = record;
  const entry = input.keyList.entries.get(record.siteId) as KeyListEntry;
  if (
    advert?.stage !== 'advertise_keys' ||
    !(advert.cipherPublicKey instanceof Uint8Array) ||
    advert.cipherPublicKey.length !== X25519_KEY_LENGTH ||
    !(advert.maskPublicKey instanceof Uint8Array) ||
    advert.maskPublicKey.length !== X25519_KEY_LENGTH ||
    !(advert.signature instanceof Uint8Array) ||
    !(record.keyListSignature instanceof Uint8Array)
  ) {
    throw secaggInvalid('MALFORMED_MESSAGE', `the advert of neighbour ${who} is malformed`, context);
  }
  const digest = advertDigest(record.siteId, advert.cipherPublicKey, advert.maskPublicKey, advert.nonceCommitment, advert.signature);
  if (!bytesEqual(digest, entry.advertDigest) || !bytesEqual(advert.nonceCommitment, entry.nonceCommitment)) {
    throw secaggPrecondition('ADVERT_MISMATCH', `the advert of neighbour ${who} is not the one L commits to`, context);
  }
  // Signed over this site's own H(RoundConfig) and H(L): a neighbour shown a different config or a
  // different L fails here (DESIGN.md step 2, "checks that they signed the same H(RoundConfig) and H(L)").
  const transcript = advertiseTranscript(input.context, advert.cipherPublicKey, advert.maskPublicKey, advert.nonceCommitment);
  if (!verifyMessage(signingPublicKey, transcript, advert.signature)) {
    throw secaggDenied('NEIGHBOUR_SIGNATURE_INVALID', `the advert signature of neighbour ${who} does not verify over this site's H(RoundConfig)`, context);
  }
  if (!verifyMessage(signingPublicKey, keyListTranscript(input.context, input.keyList.hash), record.keyListSignature)) {
    throw secaggDenied('NEIGHBOUR_SIGNATURE_INVALID', `neighbour ${who} did not sign this site's H(L)`, context);
  }
  if (bytesEqual(advert.cipherPublicKey, advert.maskPublicKey)) {
    throw secaggPrecondition('ADVERT_MISMATCH', `neighbour ${who} advertised the same key for c and s`, context);
  }
  // A low-order c or s key makes every agreement with it the all-zero secret: refused here, before this
  // site seals shares for that neighbour (c) or would derive a public pairwise mask seed from it (s).
  for (const [name, key] of [['c', advert.cipherPublicKey], ['s', advert.maskPublicKey]] as const) {
    try {
      assertX25519PublicKey(key);
    } catch (cause) {
      throw secaggPrecondition('X25519_LOW_ORDER', `neighbour ${who} advertised a low-order X25519 key for ${name}: every agreement with it is the all-zero secret`, { ...context, cause });
    }
  }
  return { siteId: record.siteId, cipherPublicKey: advert.cipherPublicKey, maskPublicKey: advert.maskPublicKey, signingPublicKey };
}
