/**
 * The coordinator's connected participants: one Session stream per site id (which of two sessions with
 * the same id keeps it is session-precedence.ts's rule), the certificate its TLS session presented, and
 * its Hello. Implements the federation's
 * SiteDirectory: `send` encodes round messages onto the stream (proto/session-codec.ts) and never throws
 * (a site that cannot be written to is a dropout for the round). It sits below both the Federation
 * service (coordinator/service), which fills it, and the Admin service (coordinator/admin), which reports it.
 */
import { EventEmitter, once } from 'node:events';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { CoordinatorToSite } from '../../crypto/secagg/round-envelope.js';
import type { EligibleSite, SiteDirectory } from '../federation/federation.js';
import type { CoordinatorMessage, ParticipantMessage__Output } from '../../proto/messages.js';
import type { FedgateError } from '../../proto/errors.js';
import { encodeCoordinatorMessage, type SiteHello } from '../../proto/session-codec.js';
import { sessionPrecedence } from './session-precedence.js';

export interface ConnectedSite {
  readonly siteId: string;
  readonly serial: string;
  /** DER of the client certificate of the session. */
  readonly certificate: Buffer;
  readonly hello: SiteHello;
  readonly call: ServerDuplexStream<ParticipantMessage__Output, CoordinatorMessage>;
  readonly connectedAt: Date;
  /** The site's Hello pins the federation's task hash. */
  readonly acceptsTask: boolean;
}

export type AttachOutcome =
  | { readonly kind: 'attached'; readonly replaced?: ConnectedSite; readonly why?: 'reconnect' | 'renewal' }
  | { readonly kind: 'refused'; readonly error: FedgateError };

export class SessionRegistry implements SiteDirectory {
  private readonly sites = new Map<string, ConnectedSite>();
  private readonly events = new EventEmitter();

  constructor(private readonly logger: Logger) {}

  /**
   * Registers a site's session, or refuses it when a live session of the same site id keeps the slot
   * (session-precedence.ts). A session it replaces is returned, not ended: the caller ends it and
   * reports the site's dropout to the open round, so the swap never leaves a round waiting for it.
   */
  attach(site: ConnectedSite, inRound: (siteId: string) => boolean): AttachOutcome {
    const previous = this.sites.get(site.siteId);
    if (previous === undefined || previous.call === site.call) {
      this.sites.set(site.siteId, site);
      this.events.emit('changed');
      return { kind: 'attached' };
    }
    const precedence = sessionPrecedence(previous, site, inRound(site.siteId));
    const serials = { site: site.siteId, liveSerial: previous.serial, newSerial: site.serial };
    if (precedence.kind === 'refuse') {
      this.logger.warn({ ...serials, reason: precedence.error.reason }, 'refused a second session for a connected site; the live session keeps its slot');
      return { kind: 'refused', error: precedence.error };
    }
    this.sites.set(site.siteId, site);
    if (precedence.why === 'reconnect') this.logger.info(serials, 'site reconnected with the same certificate; its previous session is closed and counts as a dropout');
    else this.logger.warn(serials, 'a certificate issued later for this site replaces its session (renewal); the previous session is closed');
    this.events.emit('changed');
    return { kind: 'attached', replaced: previous, why: precedence.why };
  }

  /** Removes the site if `call` is still its current session. Returns true when it was. */
  detach(siteId: string, call: ConnectedSite['call']): boolean {
    const current = this.sites.get(siteId);
    if (current?.call !== call) return false;
    this.sites.delete(siteId);
    this.events.emit('changed');
    return true;
  }

  connected(): readonly ConnectedSite[] {
    return [...this.sites.values()];
  }

  get(siteId: string): ConnectedSite | undefined {
    return this.sites.get(siteId);
  }

  eligible(): readonly EligibleSite[] {
    return [...this.sites.values()].filter((site) => site.acceptsTask).map((site) => ({ siteId: site.siteId, certificate: site.certificate }));
  }

  send(siteId: string, message: CoordinatorToSite): void {
    const site = this.sites.get(siteId);
    if (site === undefined) return;
    try {
      site.call.write(encodeCoordinatorMessage(message));
    } catch (error) {
      this.logger.warn({ site: siteId, err: error }, 'could not write to the site session');
    }
  }

  async changed(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([timeout, signal]);
    await once(this.events, 'changed', { signal: combined }).catch(() => undefined);
  }

  /** Ends every session whose certificate serial is in `serials` (live revocation). */
  closeRevoked(serials: ReadonlySet<string>, endCall: (site: ConnectedSite) => void): string[] {
    const closed: string[] = [];
    for (const site of this.sites.values()) {
      if (serials.has(site.serial)) {
        closed.push(site.siteId);
        endCall(site);
      }
    }
    return closed;
  }
}
