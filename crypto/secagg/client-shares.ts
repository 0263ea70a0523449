/**
 * The site's side of ShareKeys (DESIGN.md step 3; Bonawitz et al., CCS 2017, Fig. 4, round 1; Bell et
 * al., CCS 2020, Algorithm 2): draw the self-mask seed b, commit to H(b), Shamir-split b and s_sk into
 * shares with threshold t - one per neighbour, one kept - and seal each neighbour's pair under the
 * directed share key. Then the acceptance of U2: continue only if this site is in U2, U2 is a subset of
 * U1, t members of its closed neighbourhood are in U2 and every U2 neighbour's shares arrived intact -
 * otherwise it would mask with b alone and have no way to help remove its neighbours' masks.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { encodeFields, zeroize } from '../bytes.js';
import { openShare, sealShare } from '../aead.js';
import { deriveShareKey, shareAssociatedData } from '../agreement.js';
import { prepareX25519SecretKey } from '../x25519.js';
import type { NeighbourGraph } from '../graph.js';
import { decodeShare, encodeShare, splitSecret, type Share } from '../shamir.js';
import { signMessage } from '../signature.js';
import type { RoundConfig } from './config.js';
import { CryptoError } from '../errors.js';
import { secaggInvalid, secaggPrecondition } from './errors.js';
import { FieldReader } from './fields.js';
import type { RoundKeys, VerifiedNeighbour } from './client-keys.js';
import type { OutgoingShare, ShareDeliveryMessage, ShareKeysMessage } from './messages.js';
import { SECRET_LENGTH, isSubset, liveHolders, shareCoordinate, siteIdSet } from './neighbourhood.js';
import { commitmentOf, shareKeysTranscript, sharesDigest, survivorDigest, type RoundContext } from './transcript.js';

/** The shares of one dealer's two secrets that one holder keeps. */
export interface HeldShares {
  /** Share of b. */
  readonly selfMask: Share;
  /** Share of s_sk. */
  readonly maskKey: Share;
}

export interface ShareKeysInput {
  readonly self: string;
  readonly context: RoundContext;
  readonly config: RoundConfig;
  /** U1 in id order (the x coordinates). */
  readonly members: readonly string[];
  readonly graph: NeighbourGraph;
  readonly neighbours: ReadonlyMap<string, VerifiedNeighbour>;
  readonly keys: RoundKeys;
  readonly keyListHash: Uint8Array;
  readonly signingKey: KeyObject;
}

export interface ShareKeysOutput {
  readonly message: ShareKeysMessage;
  /** b, kept until the site has masked its input. */
  readonly selfMaskSeed: Uint8Array;
  /** The share of its own b the site holds itself (the s_sk share is zeroized at once). */
  readonly ownShares: HeldShares;
}

export function createShareKeys(input: ShareKeysInput): ShareKeysOutput {
  const { self, context, config, graph } = input;
  const selfMaskSeed = new Uint8Array(randomBytes(SECRET_LENGTH));
  const holders = graph.closedNeighbourhood(self);
  const xs = holders.map((holder) => shareCoordinate(input.members, holder));
  const selfMaskShares = splitSecret(selfMaskSeed, config.reconstructionThreshold, xs);
  const maskKeyShares = splitSecret(input.keys.mask.secretKey, config.reconstructionThreshold, xs);

  let ownShares: HeldShares | undefined;
  const shares: OutgoingShare[] = [];
  const cipherKey = prepareX25519SecretKey(input.keys.cipher.secretKey);
  for (const [index, holder] of holders.entries()) {
    const pair: HeldShares = { selfMask: selfMaskShares[index] as Share, maskKey: maskKeyShares[index] as Share };
    if (holder === self) {
      // A site reveals only while it is in U3, and then its own b-share; its own s_sk-share is never
      // needed, so it is not kept.
      zeroize(pair.maskKey.y);
      ownShares = pair;
      continue;
    }
    const neighbour = input.neighbours.get(holder) as VerifiedNeighbour;
    const key = deriveShareKey(cipherKey, neighbour.cipherPublicKey, context.roundId, self, holder);
    const plaintext = encodeFields([encodeShare(pair.selfMask), encodeShare(pair.maskKey)]);
    shares.push({ receiver: holder, ciphertext: sealShare(key, plaintext, shareAssociatedData(context.roundId, self, holder)) });
    zeroize(key, plaintext, pair.selfMask.y, pair.maskKey.y);
  }
  const selfMaskCommitment = commitmentOf(selfMaskSeed);
  const signature = signMessage(input.signingKey, shareKeysTranscript(context, input.keyListHash, selfMaskCommitment, sharesDigest(shares)));
  return {
    message: { stage: 'share_keys', roundId: context.roundId, selfMaskCommitment, shares, signature },
    selfMaskSeed,
    ownShares: ownShares as HeldShares,
  };
}

export interface DeliveryInput {
  readonly self: string;
  readonly context: RoundContext;
  readonly config: RoundConfig;
  readonly members: readonly string[];
  readonly graph: NeighbourGraph;
  readonly neighbours: ReadonlyMap<string, VerifiedNeighbour>;
  readonly cipherSecretKey: Uint8Array;
  readonly minParticipants: number;
}

export interface AcceptedDelivery {
  /** U2 as shown to this site. */
  readonly survivors: ReadonlySet<string>;
  /** H(U2). */
  readonly survivorDigest: Uint8Array;
  /** Shares held for each neighbour in U2. */
  readonly held: ReadonlyMap<string, HeldShares>;
}

export function acceptShareDelivery(message: ShareDeliveryMessage, input: DeliveryInput): AcceptedDelivery {
  const { self, graph, config } = input;
  const context = { stage: 'share_delivery', site: self } as const;
  const survivors = siteIdSet(message.survivors, 'share_delivery.survivors', context);
  if (!isSubset(survivors, new Set(input.members))) {
    throw secaggPrecondition('SURVIVOR_SET_NOT_SUBSET', 'share_delivery.survivors (U2) names a site outside U1', context);
  }
  if (!survivors.has(self)) throw secaggPrecondition('NOT_IN_SURVIVOR_SET', 'this site is not in U2', context);
  if (survivors.size < input.minParticipants) {
    throw secaggPrecondition('TOO_FEW_SURVIVORS', `|U2| = ${survivors.size} is below this site's minimum of ${input.minParticipants}`, context);
  }
  const live = liveHolders(graph, self, survivors);
  if (live < config.reconstructionThreshold) {
    throw secaggPrecondition('INSUFFICIENT_SHARE_HOLDERS', `${live} members of this site's closed neighbourhood are in U2; t = ${config.reconstructionThreshold} are required`, context);
  }
  if (!Array.isArray(message.shares)) throw secaggInvalid('MALFORMED_MESSAGE', 'share_delivery.shares must be an array', context);

  const ownX = shareCoordinate(input.members, self);
  const held = new Map<string, HeldShares>();
  try {
    const cipherKey = prepareX25519SecretKey(input.cipherSecretKey);
    for (const routed of message.shares) {
      const sender = routed?.sender;
      if (routed?.receiver !== self) {
        throw secaggPrecondition('SHARE_MISADDRESSED', `a share from ${JSON.stringify(sender)} is addressed to ${JSON.stringify(routed?.receiver)}, not to this site`, context);
      }
      if (typeof sender !== 'string' || !survivors.has(sender) || !graph.isNeighbour(self, sender) || held.has(sender)) {
        throw secaggPrecondition('SHARE_UNEXPECTED', `a share from ${JSON.stringify(sender)}, which is not a (single) neighbour in U2`, context);
      }
      held.set(sender, openPair(routed.ciphertext, sender, ownX, input, cipherKey));
    }
    for (const neighbour of graph.neighbours(self)) {
      if (survivors.has(neighbour) && !held.has(neighbour)) {
        throw secaggPrecondition('SHARE_MISSING', `the shares of U2 neighbour ${JSON.stringify(neighbour)} did not reach this site; it will not mask with b alone`, context);
      }
    }
  } catch (error) {
    for (const pair of held.values()) zeroize(pair.selfMask.y, pair.maskKey.y);
    throw error;
  }
  return { survivors, survivorDigest: survivorDigest(survivors), held };
}

function openPair(ciphertext: unknown, sender: string, ownX: number, input: DeliveryInput, cipherKey: KeyObject): HeldShares {
  const context = { stage: 'share_delivery', site: input.self } as const;
  if (!(ciphertext instanceof Uint8Array)) throw secaggInvalid('MALFORMED_MESSAGE', `the share from ${JSON.stringify(sender)} is not bytes`, context);
  const neighbour = input.neighbours.get(sender) as VerifiedNeighbour;
  const key = deriveShareKey(cipherKey, neighbour.cipherPublicKey, input.context.roundId, sender, input.self);
  let plaintext: Uint8Array | undefined;
  try {
    plaintext = openShare(key, ciphertext, shareAssociatedData(input.context.roundId, sender, input.self));
    const reader = new FieldReader(plaintext, `shares from ${JSON.stringify(sender)}`);
    const selfMask = decodeShare(reader.field('selfMask'), SECRET_LENGTH);
    const maskKey = decodeShare(reader.field('maskKey'), SECRET_LENGTH);
    reader.end();
    if (selfMask.x !== ownX || maskKey.x !== ownX) {
      throw secaggPrecondition('SHARE_INVALID', `the shares from ${JSON.stringify(sender)} are for x = ${selfMask.x}/${maskKey.x}, this site holds x = ${ownX}`, context);
    }
    return { selfMask: { x: selfMask.x, y: new Uint8Array(selfMask.y) }, maskKey: { x: maskKey.x, y: new Uint8Array(maskKey.y) } };
  } catch (cause) {
    if (cause instanceof CryptoError && cause.reason === 'SHARE_INVALID') throw cause;
    throw secaggPrecondition('SHARE_DECRYPT_FAILED', `the shares from ${JSON.stringify(sender)} do not decrypt or decode: ${cause instanceof Error ? cause.message : String(cause)}`, { ...context, cause });
  } finally {
    zeroize(key, plaintext);
  }
}
