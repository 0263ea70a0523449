/**
 * The authenticated identity of a peer, read from the TLS session and never from a message
 * (DESIGN.md, security model): site id = subject CN, role = subject OU, serial = certificate serial in
 * canonical form (upper-case hex without leading zeros, as certs/ writes it).
 */
import type { PeerCertificate } from 'node:tls';
import { CertificateRoleError, roleFromSubject, type CertificateRole } from '../crypto/certificate-role.js';
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
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (certificate === undefined) {
    throw fedgateError(
      'UNAUTHENTICATED',
      'NO_VERIFIED_CERTIFICATE',
      'no verified client certificate on this connection: connect with a certificate issued by the federation CA that is within its validity period',
    );
  }
  return identityFromCertificate(certificate);
}

export function identityFromCertificate(certificate: PeerCertificate): PeerIdentity {
  const siteId = singleValue(certificate.subject.CN, 'CN');
  return { siteId, role: peerRole(certificate, siteId), serial: canonicalSerial(certificate.serialNumber) };
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
