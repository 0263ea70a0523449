/**
 * How the round driver reaches sites, independent of gRPC. The messages themselves - the SecAgg+ stage
 * messages plus the round's framing (start, refusal, abort, committed) - are defined once for both ends
 * in crypto/secagg/round-envelope.ts; the session layer (coordinator/service) maps them to
 * federation.proto and back with the proto/ codecs.
 */
import type { CoordinatorToSite } from '../../crypto/secagg/round-envelope.js';

export type { CoordinatorToSite, SiteToCoordinator } from '../../crypto/secagg/round-envelope.js';

/** How the driver reaches sites. `send` must not throw: a site that cannot be reached is a dropout. */
export interface RoundTransport {
  send(siteId: string, message: CoordinatorToSite): void;
}
