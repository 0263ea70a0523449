/**
 * Authorization at the coordinator's service edge: every call must come from a verified certificate
 * whose serial is not revoked and whose role may call that method. Checked per call, before the handler
 * runs or a request message is read, so a revocation takes effect on the next call of an open connection.
 *
 * grpc-js has no CRL option (DESIGN.md); the revocation set is held here, built by the caller from the
 * CA's verified CRL (certs/ `verifyCertificateRevocationList`), and swapped at run time.
 */
import {
  ServerInterceptingCall,
  ServerListenerBuilder,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { fedgateError, type FedgateCode } from './errors.js';
import { CERTIFICATE_ROLES, type CertificateRole } from '../crypto/certificate-role.js';
import type { X509Certificate } from 'node:crypto';
import { canonicalSerial, describePeerCertificate, DirectIssuance, peerIdentity, verifiedPeerCertificate, type AuthenticatedCall, type PeerIdentity } from './identity.js';
import { FEDERATION_SERVICE_NAME } from './loader.js';
import { codeName, toGrpcStatus } from './status.js';

/**
 * Roles allowed per full method path ('/fedgate.v1.Federation/Session') or per service
 * ('fedgate.v1.Federation'); a method rule wins over its service's. Methods with no rule are closed.
 */
export type AccessPolicy = Readonly<Record<string, readonly CertificateRole[]>>;

export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';
export const REFLECTION_SERVICE_NAMES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

/** The coordinator's default policy: the Federation service for participants, health and reflection for every role. */
export const FEDERATION_ACCESS_POLICY: AccessPolicy = {
  [FEDERATION_SERVICE_NAME]: ['participant'],
  [HEALTH_SERVICE_NAME]: CERTIFICATE_ROLES,
  ...Object.fromEntries(REFLECTION_SERVICE_NAMES.map((name) => [name, CERTIFICATE_ROLES])),
};

export interface AccessDenial {
  readonly method: string;
  readonly peer: string;
  readonly code: FedgateCode;
  readonly reason: string;
  readonly message: string;
  /** Null when the caller had no verified certificate. */
  readonly identity: PeerIdentity | null;
}

export interface AccessControlOptions {
  readonly policy: AccessPolicy;
  /** Serials revoked at start; hex in any case, leading zeros allowed. @default none */
  readonly revokedSerials?: Iterable<string>;
  /** Called for every refused call, for the audit log. */
  readonly onDenied?: (denial: AccessDenial) => void;
}

export class AccessControl {
  private readonly policy: AccessPolicy;
  private readonly onDenied: ((denial: AccessDenial) => void) | undefined;
  private revoked: ReadonlySet<string>;

  constructor(options: AccessControlOptions) {
    this.policy = options.policy;
    this.onDenied = options.onDenied;
    this.revoked = toSerialSet(options.revokedSerials ?? []);
  }

  /** Replaces the revocation set; calls that start afterwards see the new set. */
  replaceRevokedSerials(serials: Iterable<string>): void {
    this.revoked = toSerialSet(serials);
  }

  isRevoked(serial: string): boolean {
    return this.revoked.has(canonicalSerial(serial));
  }

  /** The caller's identity if it may call `method`; otherwise throws UNAUTHENTICATED or PERMISSION_DENIED. */
  authorize(method: string, call: AuthenticatedCall): PeerIdentity {
    const identity = peerIdentity(call);
    if (this.revoked.has(identity.serial)) {
      throw fedgateError(
        'UNAUTHENTICATED',
        'CERTIFICATE_REVOKED',
        `certificate serial ${identity.serial} of ${identity.role} ${identity.siteId} has been revoked by the federation CA: ask the CA operator for a new certificate`,
      );
    }
    const allowed = this.rolesFor(method);
    if (!allowed.includes(identity.role)) {
      throw fedgateError(
        'PERMISSION_DENIED',
        'ROLE_NOT_ALLOWED',
        allowed.length === 0
          ? `${method} is not open to any role`
          : `${identity.role} ${identity.siteId} may not call ${method}: it is reserved for role ${allowed.join(' or ')}`,
      );
    }
    return identity;
  }

  /** Server interceptor enforcing `authorize` on every call (pass it in the server's `interceptors`). */
  readonly interceptor: ServerInterceptor = (method, call) =>
    guardCall(call, () => {
      this.authorize(method.path, call);
    }, (error) => this.reportDenial(method.path, call, error));

  private rolesFor(method: string): readonly CertificateRole[] {
    const service = /^\/([^/]+)\//.exec(method)?.[1];
    return this.policy[method] ?? (service === undefined ? undefined : this.policy[service]) ?? [];
  }

  private reportDenial(method: string, call: ServerInterceptingCallInterface, error: unknown): void {
    if (this.onDenied === undefined) return;
    const status = toGrpcStatus(error);
    let identity: PeerIdentity | null = null;
    try {
      identity = peerIdentity(call);
    } catch {
      identity = null;
    }
    this.onDenied({ method, peer: call.getPeer(), code: codeName(status.code) ?? 'INTERNAL', reason: status.reason, message: status.details, identity });
  }
}

/**
 * Wraps a server call so `check` runs when the request metadata arrives; if it throws, the call ends
 * with the matching status and the handler never starts.
 */
export function guardCall(
  call: ServerInterceptingCallInterface,
  check: () => void,
  onRejected?: (error: unknown) => void,
): ServerInterceptingCall {
  return new ServerInterceptingCall(call, {
    start: (next) => {
      next(
        new ServerListenerBuilder()
          .withOnReceiveMetadata((metadata, proceed) => {
            try {
              check();
            } catch (error) {
              onRejected?.(error);
              call.sendStatus(toGrpcStatus(error));
              return;
            }
            proceed(metadata);
          })
          .build(),
      );
    },
  });
}

/** Rejects calls without a verified client certificate; part of serverCredentials so it cannot be left out. */
export const requireVerifiedPeer: ServerInterceptor = (_method, call) =>
  guardCall(call, () => {
    peerIdentity(call);
  });

/**
 * requireVerifiedPeer, and the client certificate must be a leaf that the federation CA `ca` signed
 * itself (identity.ts DirectIssuance): a leaf below an intermediate CA is refused UNAUTHENTICATED, for
 * every role and every service, even when the CA lacks a path length constraint. serverCredentials
 * installs it.
 */
export function requireFederationPeer(ca: X509Certificate): ServerInterceptor {
  const issuance = new DirectIssuance(ca);
  return (_method, call) =>
    guardCall(call, () => {
      const certificate = verifiedPeerCertificate(call);
      // Names and roles are AccessControl's (it logs what it refuses); only the issuer is checked here.
      const problem = issuance.problem(certificate, `client certificate ${describePeerCertificate(certificate)}`);
      if (problem !== undefined) throw fedgateError('UNAUTHENTICATED', 'NOT_ISSUED_BY_FEDERATION_CA', problem);
    });
}

function toSerialSet(serials: Iterable<string>): ReadonlySet<string> {
  return new Set(Array.from(serials, (serial) => canonicalSerial(serial)));
}
