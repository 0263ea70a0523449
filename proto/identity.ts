/**
 * The authenticated identity of a peer, read from the TLS session and never from a message
 * (DESIGN.md, security model): site id = subject CN, role = subject OU, serial = certificate serial in
 * canonical form (upper-case hex without leading zeros, as certs/ writes it). Both sides of every
 * connection hold the peer certificate to the same two rules: its CN is a federation name
 * (crypto/entity-name.ts), and the federation CA signed it itself (`directIssuanceProblem`).
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { CertificateRoleError, roleFromSubject, type CertificateRole } from '../crypto/certificate-role.js';
import { ENTITY_NAME_RULE, isEntityName, quoteUntrusted } from '../crypto/entity-name.js';
import { fedgateError } from './errors.js';

export interface PeerIdentity {
  /** Certificate subject CN: the site id for participants, the operator or coordinator name otherwise. */
  readonly siteId: string;
  readonly role: CertificateRole;
  readonly serial: string;
}

/** What grpc-js server and client calls expose (`call.getAuthContext()`). */
export interface AuthenticatedCall {
  getAuthContext(): { readonly sslPeerCertificate?: PeerCertificate | undefined } | null;
}

/**
 * The verified peer of `call`. grpc-js only reports a certificate that passed chain verification
 * against the CA configured in the credentials; anything else is UNAUTHENTICATED.
 */
export function peerIdentity(call: AuthenticatedCall): PeerIdentity {
  return identityFromCertificate(verifiedPeerCertificate(call));
}

/** The certificate of `call`'s peer, which grpc-js reports only when it passed chain verification. */
export function verifiedPeerCertificate(call: AuthenticatedCall): PeerCertificate {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (certificate === undefined) {
    throw fedgateError(
      'UNAUTHENTICATED',
      'NO_VERIFIED_CERTIFICATE',
      'no verified client certificate on this connection: connect with a certificate issued by the federation CA that is within its validity period',
    );
  }
  return certificate;
}

export function identityFromCertificate(certificate: PeerCertificate): PeerIdentity {
  const siteId = singleValue(certificate.subject.CN, 'CN');
  const problem = commonNameProblem(siteId);
  if (problem !== undefined) throw fedgateError('PERMISSION_DENIED', 'INVALID_COMMON_NAME', `peer ${problem}`);
  return { siteId, role: peerRole(certificate, siteId), serial: canonicalSerial(certificate.serialNumber) };
}

/** "CN=... (serial ...)" of a peer certificate for messages, its peer-chosen parts quoted safely. */
export function describePeerCertificate(certificate: PeerCertificate): string {
  const commonName = certificate.subject.CN;
  return `CN=${typeof commonName === 'string' ? quoteUntrusted(commonName, 64) : quoteUntrusted(JSON.stringify(commonName ?? null), 64)} (serial ${quoteUntrusted(certificate.serialNumber, 64)})`;
}

/** Why `commonName` is not a federation name (crypto/entity-name.ts), or undefined when it is one. */
export function commonNameProblem(commonName: string): string | undefined {
  if (isEntityName(commonName)) return undefined;
  return `certificate subject CN ${quoteUntrusted(commonName, 64)} is not a federation name (${ENTITY_NAME_RULE}); the federation CA issues no other: use a certificate from \`fedgate certs issue\``;
}

/**
 * Why `certificate` is not a leaf the federation CA `ca` signed itself, or undefined when it is one.
 * The CA issues every certificate directly (certs/authority.ts sets pathLenConstraint 0); a CA created
 * without that constraint would let OpenSSL's chain building accept a leaf below an intermediate that
 * holds cA TRUE, so both sides check the issuer themselves. Results are cached per certificate.
 */
export class DirectIssuance {
  private readonly verdicts = new Map<string, string | undefined>();

  constructor(private readonly ca: X509Certificate) {}

  problem(certificate: PeerCertificate | X509Certificate, who: string): string | undefined {
    const key = certificate.fingerprint256;
    if (this.verdicts.has(key)) return this.verdicts.get(key);
    const verdict = directIssuanceProblem(certificate instanceof X509Certificate ? certificate : new X509Certificate(certificate.raw), this.ca, who);
    // A bounded cache: a coordinator sees a few hundred certificates, an attacker must not grow it forever.
    if (this.verdicts.size >= 1024) this.verdicts.clear();
    this.verdicts.set(key, verdict);
    return verdict;
  }
}

function directIssuanceProblem(certificate: X509Certificate, ca: X509Certificate, who: string): string | undefined {
  const caName = ca.subject.split('\n').join(', ');
  if (certificate.ca) return `${who} is a CA certificate (basicConstraints cA TRUE): the federation accepts only leaf certificates that its CA ${caName} issued itself`;
  let signedByCa: boolean;
  try {
    signedByCa = certificate.checkIssued(ca) && certificate.verify(ca.publicKey);
  } catch {
    signedByCa = false;
  }
  if (signedByCa) return undefined;
  return `${who} was not issued directly by the federation CA ${caName} (issuer ${quoteUntrusted(certificate.issuer.split('\n').join(', '), 200)}): certificates below an intermediate CA are refused; use a certificate from \`fedgate certs issue\``;
}

/** The one role rule (crypto/certificate-role.ts), reported under the service edge's reasons. */
function peerRole(certificate: PeerCertificate, siteId: string): CertificateRole {
  try {
    return roleFromSubject(certificate.subject, `certificate of ${siteId}`);
  } catch (error) {
    if (!(error instanceof CertificateRoleError)) throw error;
    // Several OUs (or none) make the role ambiguous; one OU that names no role is an unknown role.
    throw fedgateError('PERMISSION_DENIED', error.problem === 'UNKNOWN' ? 'UNKNOWN_ROLE' : 'AMBIGUOUS_IDENTITY', error.message);
  }
}

/** Upper-case hex without leading zeros; Node prints serials with an even number of digits. */
export function canonicalSerial(serial: string): string {
  const canonical = serial.replaceAll(':', '').toUpperCase().replace(/^0+/, '');
  if (!/^[0-9A-F]+$/.test(canonical)) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_SERIAL', `certificate serial must be hexadecimal; got ${JSON.stringify(serial)}`);
  }
  return canonical;
}

function singleValue(value: string | string[] | undefined, attribute: string): string {
  // Several CNs would make the identity ambiguous; certs/ never issues such certificates.
  if (typeof value !== 'string' || value === '') {
    throw fedgateError(
      'PERMISSION_DENIED',
      'AMBIGUOUS_IDENTITY',
      `peer certificate must carry exactly one subject ${attribute}; got ${JSON.stringify(value ?? null)}`,
    );
  }
  return value;
}
