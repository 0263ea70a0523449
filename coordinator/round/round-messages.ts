/**
 * What travels between the round driver and the session layer, independent of gRPC: the SecAgg+ stage
 * messages of crypto/secagg plus the round's framing (start, refusal, abort, committed). The session layer
 * (coordinator/service) maps these to federation.proto and back.
 */
import type { ClientMessage, ServerMessage } from '../../crypto/secagg/messages.js';

export type CoordinatorToSite =
  | { readonly kind: 'round_start'; readonly roundId: Uint8Array; readonly roundConfig: Uint8Array }
  | { readonly kind: 'stage'; readonly message: ServerMessage }
  | { readonly kind: 'abort'; readonly roundId: Uint8Array; readonly reason: string; readonly message: string }
  | { readonly kind: 'committed'; readonly roundId: Uint8Array; readonly sequence: number; readonly newModelHash: Uint8Array; readonly signatures: number };

export type SiteToCoordinator =
  | { readonly kind: 'stage'; readonly message: ClientMessage }
  | { readonly kind: 'refusal'; readonly roundId: Uint8Array; readonly reason: string; readonly message: string };

/** How the driver reaches sites. `send` must not throw: a site that cannot be reached is a dropout. */
export interface RoundTransport {
  send(siteId: string, message: CoordinatorToSite): void;
}
