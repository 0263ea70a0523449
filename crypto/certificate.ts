/**
 * Checks a site's certificate against the federation CA (DESIGN.md, security model): identity is the
 * subject CN, the role (participant, coordinator, operator) is the subject OU, revocation is the CA's
 * CRL, handed in as a set of serials. Used on every call at the service edge and by sites checking
 * their neighbours' certificates before trusting their adverts (step 2), and by `fedgate verify` on
 * ledger signatures. Pure: the certificate, CA and revocation list come in as values; the time is a
 * parameter, so the ledger can be checked "as of" commit time.
 *
 * The federation CA issues leaf certificates directly (no intermediates), so path validation reduces
 * to RFC 5280 section 6.1 for a path of length one: issuer name and signature, validity at the given
 * time, and revocation status.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { attributeValues, roleFromSubject, type CertificateRole, type SubjectAttributes } from './certificate-role.js';
import { CryptoError, describeValue, invalidArgument, type CryptoErrorReason } from './errors.js';

export interface TrustAnchor {
  /** The federation CA certificate: the only issuer trusted. */
  caCertificate: X509Certificate;
  /** Serials revoked by the CA's CRL, each as `normalizeSerial` writes it (upper-case hex, no leading zeros). */
  revokedSerials: ReadonlySet<string>;
}

export interface VerifiedPeer {
  siteId: string;
  role: CertificateRole;
  /** Normalized serial number. */
  serial: string;
  publicKey: KeyObject;
  certificate: X509Certificate;
}

const HEX_SERIAL = /^(?:0x)?[0-9a-fA-F]+$/;

/** Canonical form of a certificate serial: upper-case hex without prefix, separators or leading zeros. */
export function normalizeSerial(hex: string): string {
  if (typeof hex !== 'string') throw invalidArgument('INVALID_SERIAL', `serial must be a hex string, got ${describeValue(hex)}`);
  const compact = hex.replace(/[:\s]/g, '');
  if (!HEX_SERIAL.test(compact)) {
    throw invalidArgument('INVALID_SERIAL', `serial must be hexadecimal digits (optionally 0x-prefixed or colon-separated), got ${JSON.stringify(hex)}`);
  }
  const digits = compact.replace(/^0x/, '').replace(/^0+/, '').toUpperCase();
  return digits === '' ? '0' : digits;
}

function denied(reason: CryptoErrorReason, message: string, cause?: unknown): CryptoError {
  return new CryptoError('PERMISSION_DENIED', reason, message, cause === undefined ? undefined : { cause });
}

function parseCertificate(certificate: Uint8Array | string): X509Certificate {
  if (!(certificate instanceof Uint8Array) && typeof certificate !== 'string') {
    throw invalidArgument('INVALID_CERTIFICATE', `certificate must be DER bytes or a PEM string, got ${describeValue(certificate)}`);
  }
  try {
    return new X509Certificate(typeof certificate === 'string' ? certificate : Buffer.from(certificate.buffer, certificate.byteOffset, certificate.byteLength));
  } catch (error) {
    throw denied('CERTIFICATE_MALFORMED', `certificate (${describeValue(certificate)}) is not a parseable X.509 certificate in DER or PEM`, error);
  }
}

/**
 * The subject's attributes, unescaped by OpenSSL (the legacy object gives a string per attribute, or an
 * array when the attribute is repeated); parsing the printed DN instead would have to undo RFC 2253
 * escaping.
 */
function subjectAttributes(certificate: X509Certificate): SubjectAttributes | undefined {
  return certificate.toLegacyObject().subject as unknown as SubjectAttributes | undefined;
}

function checkValidity(certificate: X509Certificate, at: Date, who: string): void {
  const notBefore = Date.parse(certificate.validFrom);
  const notAfter = Date.parse(certificate.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) {
    throw denied('CERTIFICATE_MALFORMED', `${who} has an unreadable validity period (${certificate.validFrom} .. ${certificate.validTo})`);
  }
  const time = at.getTime();
  if (time < notBefore) {
    throw denied('CERTIFICATE_NOT_YET_VALID', `${who} is not valid before ${new Date(notBefore).toISOString()}, checked at ${at.toISOString()}`);
  }
  if (time > notAfter) {
    throw denied('CERTIFICATE_EXPIRED', `${who} expired at ${new Date(notAfter).toISOString()}, checked at ${at.toISOString()}`);
  }
}

function checkTrust(trust: TrustAnchor, at: Date): void {
  if (typeof trust !== 'object' || trust === null || !(trust.caCertificate instanceof X509Certificate)) {
    throw invalidArgument('INVALID_TRUST_ANCHOR', `trust.caCertificate must be an X509Certificate, got ${describeValue(trust?.caCertificate)}`);
  }
  if (!(trust.revokedSerials instanceof Set)) {
    throw invalidArgument('INVALID_TRUST_ANCHOR', `trust.revokedSerials must be a Set of serials, got ${describeValue(trust.revokedSerials)}`);
  }
  for (const serial of trust.revokedSerials) {
    // A serial in another spelling would never match and silently un-revoke a certificate.
    if (typeof serial !== 'string' || normalizeSerial(serial) !== serial) {
      throw invalidArgument('INVALID_TRUST_ANCHOR', `trust.revokedSerials must hold normalized serials (normalizeSerial), got ${JSON.stringify(serial)}`);
    }
  }
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw invalidArgument('INVALID_TIME', `at must be a valid Date, got ${describeValue(at)}`);
  if (!trust.caCertificate.ca) {
    // RFC 5280 section 4.2.1.9: only a certificate with basicConstraints cA = true may issue others.
    throw invalidArgument('INVALID_TRUST_ANCHOR', `trust.caCertificate (${oneLine(trust.caCertificate.subject)}) is not a CA certificate (basicConstraints cA is not true)`);
  }
}

/** Issuer name matches the CA's subject and the signature verifies under the CA's key. */
function issuedBy(certificate: X509Certificate, ca: X509Certificate): boolean {
  try {
    return certificate.checkIssued(ca) && certificate.verify(ca.publicKey);
  } catch {
    return false; // e.g. a signature algorithm the CA key cannot verify
  }
}

function oneLine(distinguishedName: string): string {
  return distinguishedName.split('\n').join(', ');
}

/**
 * Verifies `certificate` (DER bytes or PEM) for a peer at time `at`: issued and signed by the trust
 * anchor's CA, within its validity period (and the CA within its own), not revoked, a leaf, with one
 * subject CN (the site id) and one subject OU naming its role; optionally the expected site id and
 * role. Failures are PERMISSION_DENIED with reason CERTIFICATE_UNTRUSTED, CERTIFICATE_EXPIRED,
 * CERTIFICATE_NOT_YET_VALID, CERTIFICATE_REVOKED, CERTIFICATE_ROLE (crypto/certificate-role.ts),
 * CERTIFICATE_IDENTITY or CERTIFICATE_MALFORMED, and a message naming the subject.
 */
export function verifyPeerCertificate(
  certificate: Uint8Array | string,
  trust: TrustAnchor,
  at: Date,
  expected: { siteId?: string; role?: CertificateRole } = {},
): VerifiedPeer {
  checkTrust(trust, at);
  if (typeof expected !== 'object' || expected === null) throw invalidArgument('INVALID_EXPECTED', `expected must be an object, got ${describeValue(expected)}`);
  const parsed = parseCertificate(certificate);
  const ca = trust.caCertificate;
  const who = `certificate of ${JSON.stringify(oneLine(parsed.subject))} (serial ${normalizeSerial(parsed.serialNumber)})`;
  if (!issuedBy(parsed, ca)) {
    throw denied('CERTIFICATE_UNTRUSTED', `${who} is not issued and signed by the federation CA ${JSON.stringify(oneLine(ca.subject))}`);
  }
  if (parsed.ca) throw denied('CERTIFICATE_UNTRUSTED', `${who} is a CA certificate, expected a site (leaf) certificate`);
  checkValidity(ca, at, `the federation CA certificate ${JSON.stringify(oneLine(ca.subject))}`);
  checkValidity(parsed, at, who);
  const serial = normalizeSerial(parsed.serialNumber);
  if (trust.revokedSerials.has(serial)) throw denied('CERTIFICATE_REVOKED', `${who} is revoked by the federation CA's CRL`);

  const subject = subjectAttributes(parsed);
  const role = roleFromSubject(subject, who);
  if (expected.role !== undefined && role !== expected.role) {
    throw denied('CERTIFICATE_ROLE', `${who} has role ${JSON.stringify(role)}, expected ${JSON.stringify(expected.role)}`);
  }
  const names = attributeValues(subject, 'CN');
  const siteId = names[0];
  if (names.length !== 1 || siteId === undefined || siteId.length === 0) {
    throw denied('CERTIFICATE_IDENTITY', `${who} must carry exactly one non-empty subject CN (the site id), got ${JSON.stringify(names)}`);
  }
  if (expected.siteId !== undefined && siteId !== expected.siteId) {
    throw denied('CERTIFICATE_IDENTITY', `${who} identifies site ${JSON.stringify(siteId)}, expected ${JSON.stringify(expected.siteId)}`);
  }
  return { siteId, role, serial, publicKey: parsed.publicKey, certificate: parsed };
}
