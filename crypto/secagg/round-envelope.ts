/**
 * The framing of a round around the SecAgg+ stage messages (DESIGN.md "A round"): the coordinator opens
 * it with the RoundConfig, relays stage messages, and ends it with an abort or a commit; a site answers
 * with stage messages or refuses. One definition for both ends: the coordinator's round driver
 * (coordinator/round) and the site's round session (participant/round) speak it, and proto/ maps it
 * onto the Session stream of federation.proto (session-codec.ts).
 *
 * It lives here rather than in proto/ because both ends that use it are transport-free and import
 * crypto/ only; like the stage messages, it holds plain values and nothing of gRPC.
 */
import type { ClientMessage, MaskedInputMessage, ServerMessage } from './messages.js';

/** A round ended, or a site left it, for a typed reason (snake_case, e.g. "too_few_survivors"). */
export interface RoundNotice {
  readonly roundId: Uint8Array;
  readonly reason: string;
  /** Human-readable detail; never read by programs. */
  readonly message: string;
}

export type CoordinatorToSite =
  /** Step 1: the canonical RoundConfig bytes (their SHA-256 is H(RoundConfig)) of round `roundId`. */
  | { readonly kind: 'round_start'; readonly roundId: Uint8Array; readonly roundConfig: Uint8Array }
  | { readonly kind: 'stage'; readonly message: ServerMessage }
  | ({ readonly kind: 'abort' } & RoundNotice)
  /**
   * Step 7: the ledger recorded the round. `commitRecord` is the quorum-signed record's canonical bytes
   * (commit-record-codec.ts), which the site verifies as the next link of its chain (commit-chain.ts).
   */
  | {
      readonly kind: 'committed';
      readonly roundId: Uint8Array;
      readonly sequence: number;
      readonly newModelHash: Uint8Array;
      readonly signatures: number;
      readonly commitRecord: Uint8Array;
    };

/** The stage messages a site sends on its session stream: all but the masked input, which goes by upload. */
export type SessionClientMessage = Exclude<ClientMessage, MaskedInputMessage>;

/** What a site sends on its session stream. */
export type SiteSessionMessage = { readonly kind: 'stage'; readonly message: SessionClientMessage } | ({ readonly kind: 'refusal' } & RoundNotice);

/** What the coordinator's round receives from a site: its session messages and its uploaded masked input. */
export type SiteToCoordinator = { readonly kind: 'stage'; readonly message: ClientMessage } | ({ readonly kind: 'refusal' } & RoundNotice);
