/**
 * The coordinator's connected participants: one Session stream per site id (a reconnect replaces the old
 * stream), the certificate its TLS session presented, and its Hello. Implements the federation's
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
import { encodeCoordinatorMessage, type SiteHello } from '../../proto/session-codec.js';

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

export class SessionRegistry implements SiteDirectory {
  private readonly sites = new Map<string, ConnectedSite>();
  private readonly events = new EventEmitter();

  constructor(private readonly logger: Logger) {}

  /** Registers a site's session; an older session of the same site is ended. */
  attach(site: ConnectedSite): void {
    const previous = this.sites.get(site.siteId);
    this.sites.set(site.siteId, site);
    if (previous !== undefined && previous.call !== site.call) {
      this.logger.info({ site: site.siteId }, 'site reconnected; closing its previous session');
      previous.call.end();
    }
    this.events.emit('changed');
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
