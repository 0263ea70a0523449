/**
 * The site's checks of what the coordinator says about survivors after MaskedInput (DESIGN.md step 5;
 * Bonawitz et al., CCS 2017, Fig. 4, round 3, "ConsistencyCheck"): the U3 it is asked to sign, the
 * signed MaskedInput closings of its neighbours in U3, and later the consistency signatures of its
 * closed neighbourhood. Signatures are verified here; the reveal rule itself is client-reveal.ts.
 */
import { bytesEqual } from '../bytes.js';
import { verifyMessage } from '../signature.js';
import type { NeighbourGraph } from '../graph.js';
import { secaggDenied, secaggPrecondition } from './errors.js';
import type { VerifiedNeighbour } from './client-keys.js';
import type { ConsistencyRequestMessage, UnmaskRequestMessage } from './messages.js';
import { isSubset, siteIdSet } from './neighbourhood.js';
import { consistencyTranscript, maskedInputTranscript, type RoundContext } from './transcript.js';

export interface SurvivorView {
  readonly self: string;
  readonly context: RoundContext;
  readonly graph: NeighbourGraph;
  readonly neighbours: ReadonlyMap<string, VerifiedNeighbour>;
  readonly keyListHash: Uint8Array;
  /** U2 and H(U2) as this site saw them. */
  readonly shareSurvivors: ReadonlySet<string>;
  readonly survivorDigest: Uint8Array;
  readonly minParticipants: number;
}

export interface AcceptedMaskedSurvivors {
  /** U3. */
  readonly survivors: ReadonlySet<string>;
  /** Neighbours in U3 whose signed closing carries this site's H(U2). */
  readonly survivorDigestMatches: ReadonlySet<string>;
}

/**
 * Checks U3 before signing it: this site in U3, U3 a subset of U2, |U3| >= its minimum, and a valid
 * signed closing from every neighbour in U3 (a neighbour the coordinator counts as having uploaded must
 * have said so itself). Records which neighbours closed with the same H(U2).
 */
export function acceptMaskedSurvivors(message: ConsistencyRequestMessage, view: SurvivorView): AcceptedMaskedSurvivors {
  const context = { stage: 'consistency_check', site: view.self } as const;
  const survivors = siteIdSet(message.survivors, 'consistency_request.survivors', context);
  if (!survivors.has(view.self)) throw secaggPrecondition('NOT_IN_SURVIVOR_SET', 'this site is not in U3', context);
  if (!isSubset(survivors, view.shareSurvivors)) {
    throw secaggPrecondition('SURVIVOR_SET_NOT_SUBSET', 'consistency_request.survivors (U3) names a site outside U2', context);
  }
  if (survivors.size < view.minParticipants) {
    throw secaggPrecondition('TOO_FEW_SURVIVORS', `|U3| = ${survivors.size} is below this site's minimum of ${view.minParticipants}`, context);
  }
  const closings = new Map<string, ConsistencyRequestMessage['closings'][number]>();
  if (Array.isArray(message.closings)) for (const closing of message.closings) closings.set(closing?.siteId, closing);
  const matches = new Set<string>();
  for (const neighbour of view.graph.neighbours(view.self)) {
    if (!survivors.has(neighbour)) continue;
    const closing = closings.get(neighbour);
    if (closing === undefined) {
      throw secaggPrecondition('CLOSING_MISSING', `U3 member and neighbour ${JSON.stringify(neighbour)} has no signed MaskedInput closing`, context);
    }
    const publicKey = (view.neighbours.get(neighbour) as VerifiedNeighbour).signingPublicKey;
    const valid =
      closing.survivorDigest instanceof Uint8Array &&
      closing.uploadHash instanceof Uint8Array &&
      closing.signature instanceof Uint8Array &&
      verifyMessage(publicKey, maskedInputTranscript(view.context, view.keyListHash, closing.survivorDigest, closing.uploadHash), closing.signature);
    if (!valid) {
      throw secaggDenied('CLOSING_SIGNATURE_INVALID', `the MaskedInput closing of neighbour ${JSON.stringify(neighbour)} does not verify`, context);
    }
    if (bytesEqual(closing.survivorDigest, view.survivorDigest)) matches.add(neighbour);
  }
  return { survivors, survivorDigestMatches: matches };
}

/**
 * Members of this site's closed neighbourhood whose consistency signature verifies over this site's own
 * (H(L), H(U2), U3). A signature over any other view simply does not count. The site itself counts: it
 * signed before it was asked to unmask.
 */
export function consistencySigners(message: UnmaskRequestMessage, view: SurvivorView, maskedSurvivors: ReadonlySet<string>): Set<string> {
  const signers = new Set<string>([view.self]);
  if (!Array.isArray(message.signatures)) return signers;
  const transcript = consistencyTranscript(view.context, view.keyListHash, view.survivorDigest, maskedSurvivors);
  for (const entry of message.signatures) {
    const neighbour = typeof entry?.siteId === 'string' ? view.neighbours.get(entry.siteId) : undefined;
    if (neighbour === undefined || !maskedSurvivors.has(neighbour.siteId) || !(entry.signature instanceof Uint8Array)) continue;
    if (verifyMessage(neighbour.signingPublicKey, transcript, entry.signature)) signers.add(neighbour.siteId);
  }
  return signers;
}
