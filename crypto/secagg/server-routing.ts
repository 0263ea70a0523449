/**
 * What the coordinator forwards between stages (DESIGN.md steps 2 and 3): the key list L, every site's graph message
 * (all nonces, its neighbours' signed adverts and certificates, the CRL) and every U2 member's
 * incoming share ciphertexts. The coordinator routes ciphertext only; it never sees a share in the clear.
 */
import type { NeighbourGraph } from '../graph.js';
import { sortSiteIds } from '../graph.js';
import type { AdvertiseKeysMessage, GraphMessage, KeyListEntry, ShareDeliveryMessage } from './messages.js';
import { advertDigest } from './transcript.js';

/** L: (site id, H(advert), H(r_u)) for every member of U1, in id order. */
export function keyListEntries(members: readonly string[], adverts: ReadonlyMap<string, AdvertiseKeysMessage>): KeyListEntry[] {
  return members.map((siteId) => {
    const advert = adverts.get(siteId) as AdvertiseKeysMessage;
    return {
      siteId,
      advertDigest: advertDigest(siteId, advert.cipherPublicKey, advert.maskPublicKey, advert.nonceCommitment, advert.signature),
      nonceCommitment: advert.nonceCommitment,
    };
  });
}

export interface GraphRouting {
  readonly roundId: Uint8Array;
  /** U1 in id order. */
  readonly members: readonly string[];
  readonly graph: NeighbourGraph;
  readonly nonces: ReadonlyMap<string, Uint8Array>;
  readonly adverts: ReadonlyMap<string, AdvertiseKeysMessage>;
  readonly keyListSignatures: ReadonlyMap<string, Uint8Array>;
  readonly certificates: ReadonlyMap<string, Uint8Array | string>;
  readonly revokedSerials: Iterable<string>;
}

/** One graph message per member of U1. */
export function graphMessages(routing: GraphRouting): Map<string, GraphMessage> {
  const nonces = routing.members.map((siteId) => ({ siteId, nonce: routing.nonces.get(siteId) as Uint8Array }));
  const revokedSerials = [...routing.revokedSerials].sort();
  const messages = new Map<string, GraphMessage>();
  for (const siteId of routing.members) {
    const neighbours = routing.graph.neighbours(siteId).map((neighbour) => ({
      siteId: neighbour,
      advert: routing.adverts.get(neighbour) as AdvertiseKeysMessage,
      keyListSignature: routing.keyListSignatures.get(neighbour) as Uint8Array,
      certificate: routing.certificates.get(neighbour) as Uint8Array | string,
    }));
    messages.set(siteId, { stage: 'graph', roundId: routing.roundId, nonces, neighbours, revokedSerials });
  }
  return messages;
}

/** U2 and, for each of its members, the ciphertexts its U2 neighbours sealed to it. */
export function shareDeliveries(
  roundId: Uint8Array,
  graph: NeighbourGraph,
  survivors: ReadonlySet<string>,
  sealed: (sender: string, receiver: string) => Uint8Array,
): Map<string, ShareDeliveryMessage> {
  const ordered = sortSiteIds(survivors);
  const messages = new Map<string, ShareDeliveryMessage>();
  for (const receiver of ordered) {
    const shares = graph
      .neighbours(receiver)
      .filter((sender) => survivors.has(sender))
      .map((sender) => ({ sender, receiver, ciphertext: sealed(sender, receiver) }));
    messages.set(receiver, { stage: 'share_delivery', roundId, survivors: ordered, shares });
  }
  return messages;
}
