/**
 * The site's reveal rule for Unmask as one pure decision function (DESIGN.md steps 5 and 6; Bonawitz et
 * al., CCS 2017, Fig. 4, round 4; Bell et al., CCS 2020, section 3.2). Inputs are sets the client has
 * already established - signatures verified, digests compared - so the rule itself can be enumerated
 * exhaustively without any cryptography.
 *
 * Why each rule: revealing a neighbour's b-share AND its s_sk-share would let the coordinator remove
 * both masks from that neighbour's input; the rules make sure that, whatever survivor sets the
 * coordinator shows to different sites, no dealer ever gets t shares of both secrets out of honest
 * holders.
 */
import type { RevealedSecret } from './messages.js';

export interface RevealView {
  readonly self: string;
  /** The site and its neighbours (the holders of its shares and the dealers of the shares it holds). */
  readonly closedNeighbourhood: readonly string[];
  /** U2 as this site saw it (it masked with exactly these neighbours). */
  readonly shareSurvivors: ReadonlySet<string>;
  /** U3, the set this site signed in ConsistencyCheck. */
  readonly maskedSurvivors: ReadonlySet<string>;
  /** Sites whose verified consistency signature covers this site's (H(L), H(U2), U3); the site itself included once it signed. */
  readonly consistencySigners: ReadonlySet<string>;
  /** Members of U3 whose signed MaskedInput closing carries this site's H(U2). */
  readonly survivorDigestMatches: ReadonlySet<string>;
  /** t. */
  readonly reconstructionThreshold: number;
  /** The site's policy minimum for |U3|. */
  readonly minParticipants: number;
  /** Shares of each dealer already revealed earlier in this round (normally none: Unmask is answered once). */
  readonly alreadyRevealed: ReadonlyMap<string, RevealedSecret>;
  /** A plaintext round has no masks: nothing is revealed. */
  readonly plaintext: boolean;
}

export interface PlannedReveal {
  readonly dealer: string;
  readonly secret: RevealedSecret;
}

export type RevealRefusalReason =
  | 'NOT_IN_SURVIVOR_SET'
  | 'SURVIVOR_SET_NOT_SUBSET'
  | 'TOO_FEW_SURVIVORS'
  | 'INSUFFICIENT_CONSISTENCY_SIGNATURES'
  | 'CONFLICTING_REVEAL';

export type RevealDecision =
  | {
      readonly action: 'reveal';
      /** One entry per dealer, in neighbourhood (id) order. */
      readonly reveals: readonly PlannedReveal[];
      /** Dealers in U3 whose b-share is withheld because their signed H(U2) differs from this site's. */
      readonly withheld: readonly string[];
    }
  | { readonly action: 'refuse'; readonly reason: RevealRefusalReason; readonly detail: string };

/**
 * Decides what the site reveals in Unmask, or that it refuses. In order:
 * 1. the site is in U3, U3 is a subset of U2, and |U3| >= its min participants;
 * 2. at least t members of its closed neighbourhood (itself included) signed the same (H(L), H(U2), U3);
 * 3. for each dealer v in its closed neighbourhood and in U2: v in U3 -> v's b-share, but only when v's
 *    signed H(U2) equals its own (else withheld); v not in U3 -> v's s_sk-share;
 * 4. never the other secret of a dealer for which one was revealed before (the whole answer is refused).
 */
export function decideReveals(view: RevealView): RevealDecision {
  const refuse = (reason: RevealRefusalReason, detail: string): RevealDecision => ({ action: 'refuse', reason, detail });
  if (!view.maskedSurvivors.has(view.self)) {
    return refuse('NOT_IN_SURVIVOR_SET', 'this site is not in the survivor set U3');
  }
  for (const member of view.maskedSurvivors) {
    if (!view.shareSurvivors.has(member)) {
      return refuse('SURVIVOR_SET_NOT_SUBSET', `U3 member ${JSON.stringify(member)} is not in U2`);
    }
  }
  if (view.maskedSurvivors.size < view.minParticipants) {
    return refuse('TOO_FEW_SURVIVORS', `|U3| = ${view.maskedSurvivors.size} is below this site's minimum of ${view.minParticipants}`);
  }
  const signers = view.closedNeighbourhood.filter((member) => view.consistencySigners.has(member)).length;
  if (signers < view.reconstructionThreshold) {
    return refuse(
      'INSUFFICIENT_CONSISTENCY_SIGNATURES',
      `${signers} members of this site's closed neighbourhood signed its (H(L), H(U2), U3); t = ${view.reconstructionThreshold} are required`,
    );
  }
  if (view.plaintext) return { action: 'reveal', reveals: [], withheld: [] };

  const reveals: PlannedReveal[] = [];
  const withheld: string[] = [];
  for (const dealer of view.closedNeighbourhood) {
    if (!view.shareSurvivors.has(dealer)) continue;
    let secret: RevealedSecret;
    if (view.maskedSurvivors.has(dealer)) {
      if (dealer !== view.self && !view.survivorDigestMatches.has(dealer)) {
        withheld.push(dealer);
        continue;
      }
      secret = 'self_mask';
    } else {
      secret = 'mask_key';
    }
    const earlier = view.alreadyRevealed.get(dealer);
    if (earlier !== undefined && earlier !== secret) {
      return refuse('CONFLICTING_REVEAL', `the ${earlier} share of ${JSON.stringify(dealer)} was revealed before; its ${secret} share never will be`);
    }
    reveals.push({ dealer, secret });
  }
  return { action: 'reveal', reveals, withheld };
}
