/**
 * Mutual TLS for fedgate (DESIGN.md, security model): TLS 1.3 only, the coordinator requires a client
 * certificate chained to the federation CA, the participant verifies the coordinator's certificate and
 * host name. Both sides check their own certificate when the credentials are built, so a wrong file,
 * an expired certificate or a key that belongs to another certificate fails at start-up with a message
 * naming it, not later as an opaque handshake failure. Both sides accept only a peer certificate that the
 * federation CA signed itself (no intermediate CA, whatever the chain the peer sends) and whose CN is a
 * federation name (crypto/entity-name.ts): the coordinator per call, the participant and the operator
 * before anything is sent on the connection (checkServerIdentity, during the handshake).
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { checkServerIdentity, createSecureContext, type PeerCertificate } from 'node:tls';
import { ChannelCredentials, ServerCredentials, credentials as grpcCredentials, type ServerInterceptor } from '@grpc/grpc-js';
import { CertificateRoleError, roleFromCertificate, roleFromSubject, type CertificateRole } from '../crypto/certificate-role.js';
import { requireFederationPeer } from './access-control.js';
import { serverHttp2Settings, type TransportTuning } from './channel-options.js';
import { fedgateError } from './errors.js';
import { commonNameProblem, describePeerCertificate, DirectIssuance } from './identity.js';

export interface TlsIdentity {
  /** The federation CA certificate (PEM). */
  readonly caPem: string | Buffer;
  /** This side's certificate (PEM), issued by that CA. */
  readonly certPem: string | Buffer;
  /** This side's private key (PEM). */
  readonly keyPem: string | Buffer;
}

export interface ChannelCredentialsOptions extends TlsIdentity {
  /** Host name to verify in the coordinator's certificate when it differs from the dialled address. */
  readonly serverName?: string;
  /**
   * The federation's current CRL (PEM, the crl.pem of the site bundle). When given, a revoked
   * coordinator certificate fails the handshake; so does a CRL past its nextUpdate, so refresh it.
   */
  readonly crlPem?: string | Buffer;
}

const MIN_TLS_VERSION = 'TLSv1.3';

/**
 * Server side. Node verifies the client chain against `caPem` during the handshake
 * (`requestCert`); the built-in interceptor then ends every call from a connection without a verified
 * certificate with UNAUTHENTICATED. Rejecting at that point rather than with the TLS handshake
 * (`rejectUnauthorized`) is deliberate: Node's TLS server drops a rejected client without telling it
 * why, while a gRPC status reaches the client with the reason. No handler runs and no request message
 * is read for such a call either way.
 */
export function serverCredentials(identity: TlsIdentity, tuning: TransportTuning = {}): ServerCredentials {
  checkIdentity(identity, ['coordinator'], 'server');
  return new MutualTlsServerCredentials(identity, tuning);
}

/** Client side (participant, operator): presents our certificate, trusts only the federation CA. */
export function channelCredentials(options: ChannelCredentialsOptions): ChannelCredentials {
  checkIdentity(options, ['participant', 'operator'], 'client');
  const secureContext = createSecureContext({
    ca: options.caPem,
    cert: options.certPem,
    key: options.keyPem,
    minVersion: MIN_TLS_VERSION,
    ...(options.crlPem === undefined ? {} : { crl: options.crlPem }),
  });
  const { serverName } = options;
  const issuance = new DirectIssuance(new X509Certificate(options.caPem));
  return grpcCredentials.createFromSecureContext(secureContext, {
    checkServerIdentity: (host: string, certificate: PeerCertificate) =>
      checkCoordinatorName(certificate) ?? checkServerIdentity(serverName ?? host, certificate) ?? checkCoordinatorRole(certificate) ?? checkCoordinatorIssuer(certificate, issuance),
  });
}

/**
 * The receive window each incoming connection gets (bindServer raises it after binding): the stream
 * window these credentials advertise, or HTTP/2 tuning's default for credentials made elsewhere.
 */
export function connectionWindowBytes(credentials: ServerCredentials): number {
  return credentials instanceof MutualTlsServerCredentials ? credentials.settings.initialWindowSize : serverHttp2Settings().initialWindowSize;
}

class MutualTlsServerCredentials extends ServerCredentials {
  readonly settings: ReturnType<typeof serverHttp2Settings>;

  constructor(identity: TlsIdentity, tuning: TransportTuning) {
    const settings = serverHttp2Settings(tuning);
    super(
      // grpc-js passes these options to http2.createSecureServer; `settings` is the only way to raise
      // the server's HTTP/2 receive window and frame size (it replaces 'grpc.max_concurrent_streams').
      { requestCert: true, rejectUnauthorized: false, minVersion: MIN_TLS_VERSION, settings },
      { ca: identity.caPem, cert: identity.certPem, key: identity.keyPem, minVersion: MIN_TLS_VERSION },
    );
    this.settings = settings;
    this.requirePeer = requireFederationPeer(new X509Certificate(identity.caPem));
  }

  private readonly requirePeer: ServerInterceptor;

  override _getInterceptors(): ServerInterceptor[] {
    return [this.requirePeer];
  }

  override _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/** The coordinator's CN must be a federation name before it is quoted anywhere (the same rule as the coordinator applies to its peers). */
function checkCoordinatorName(certificate: PeerCertificate): Error | undefined {
  const commonName = certificate.subject.CN;
  const problem = typeof commonName === 'string' ? commonNameProblem(commonName) : 'certificate must carry exactly one subject CN';
  return problem === undefined ? undefined : new Error(`refusing the coordinator: its server ${problem}`);
}

/** The coordinator's certificate must be a leaf the federation CA signed itself, not one below an intermediate CA. */
function checkCoordinatorIssuer(certificate: PeerCertificate, issuance: DirectIssuance): Error | undefined {
  const problem = issuance.problem(certificate, `server certificate ${describePeerCertificate(certificate)}`);
  return problem === undefined ? undefined : new Error(`refusing the coordinator: ${problem}; nothing was sent to it`);
}

/** Defence in depth: the server we talk to must hold a coordinator certificate, not just any valid one. */
function checkCoordinatorRole(certificate: PeerCertificate): Error | undefined {
  const who = `server certificate of ${String(certificate.subject.CN)}`;
  try {
    const role = roleFromSubject(certificate.subject, who);
    return role === 'coordinator' ? undefined : new Error(`${who} has role ${JSON.stringify(role)}; expected "coordinator"`);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

function checkIdentity(identity: TlsIdentity, roles: readonly CertificateRole[], side: string, now: Date = new Date()): void {
  const ca = parseCertificate(identity.caPem, `${side} caPem`);
  const certificate = parseCertificate(identity.certPem, `${side} certPem`);
  let key: KeyObject;
  try {
    key = createPrivateKey(identity.keyPem);
  } catch (error) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_PEM', `${side} keyPem is not a PEM private key: ${error instanceof Error ? error.message : String(error)}`);
  }
  const subject = describeSubject(certificate);
  if (!certificate.checkPrivateKey(key)) {
    throw fedgateError('INVALID_ARGUMENT', 'KEY_MISMATCH', `${side} keyPem does not belong to the certificate of ${subject}`);
  }
  if (!ca.ca) {
    throw fedgateError('INVALID_ARGUMENT', 'NOT_A_CA', `${side} caPem (${describeSubject(ca)}) is not a CA certificate`);
  }
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
    throw fedgateError(
      'FAILED_PRECONDITION',
      'CERTIFICATE_NOT_FROM_CA',
      `certificate of ${subject} was not issued by the federation CA ${describeSubject(ca)}: use the bundle issued by this federation's CA`,
    );
  }
  const validFrom = new Date(certificate.validFrom);
  const validTo = new Date(certificate.validTo);
  if (now < validFrom || now > validTo) {
    throw fedgateError(
      'FAILED_PRECONDITION',
      now > validTo ? 'CERTIFICATE_EXPIRED' : 'CERTIFICATE_NOT_YET_VALID',
      `certificate of ${subject} is valid from ${validFrom.toISOString()} to ${validTo.toISOString()}, not now (${now.toISOString()}): ask the CA operator to renew it`,
    );
  }
  const needed = `${side} credentials need a certificate with role ${roles.join(' or ')} (subject OU)`;
  let role: CertificateRole;
  try {
    role = roleFromCertificate(certificate, `certificate of ${subject}`);
  } catch (error) {
    if (error instanceof CertificateRoleError) throw fedgateError('INVALID_ARGUMENT', 'WRONG_ROLE', `${needed}; ${error.message}`);
    throw error;
  }
  if (!roles.includes(role)) throw fedgateError('INVALID_ARGUMENT', 'WRONG_ROLE', `${needed}; ${subject} has ${JSON.stringify(role)}`);
}

function parseCertificate(pem: string | Buffer, field: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_PEM', `${field} is not a PEM X.509 certificate: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function describeSubject(certificate: X509Certificate): string {
  return certificate.subject.split('\n').join(', ');
}
