/**
 * Leaf certificates for participants, coordinators and operators, signed by the federation CA.
 *
 * Identity layout (DESIGN.md, security model): subject CN = the site/operator/coordinator name that
 * round signatures and the ledger refer to; subject OU = the role. The role is never encoded in the name,
 * so renaming cannot change privileges. Extended key usage pins what the key may do in TLS
 * (RFC 5280 section 4.2.1.12): coordinators are TLS servers, participants and operators TLS clients.
 */
import forge from 'node-forge';
import { CertificateRoleError, roleFromOrganizationalUnits, type CertificateRole } from '../crypto/certificate-role.js';
import { parseAuthority, parseCertificatePem, type CertificateAuthority } from './authority.js';
import { PkiError } from './errors.js';
import { generateRsaKeyPair } from './keys.js';
import { randomSerial, serialFromDerHex, serialToDerHex } from './serial.js';
import {
  parseHosts,
  resolveValidity,
  validateEntityName,
  validateRole,
  type SubjectAltName,
  type ValidityOptions,
} from './validation.js';

/** @default 365 days for leaf certificates; renew before they expire (`renewCertificate`). */
export const DEFAULT_LEAF_VALID_DAYS = 365;

export interface IssueCertificateOptions extends ValidityOptions {
  /** The identity: site id, operator name or coordinator name (subject CN). */
  readonly commonName: string;
  readonly role: CertificateRole;
  /** DNS names and IP addresses participants dial (subjectAltName); coordinator certificates only, at least one. */
  readonly hosts?: readonly string[];
  /** Clock for tests; @default new Date() */
  readonly now?: Date;
}

export interface IssuedCertificate {
  readonly certificatePem: string;
  /** PKCS#8 PEM of the fresh key. Secret: never logged, written with mode 0600 only. */
  readonly privateKeyPem: string;
  /** Canonical serial: upper-case hex without leading zeros. */
  readonly serial: string;
  readonly commonName: string;
  readonly role: CertificateRole;
  readonly hosts: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Public facts of a certificate, read back from its PEM. */
export interface CertificateSummary {
  readonly commonName: string;
  readonly role: CertificateRole;
  readonly serial: string;
  readonly hosts: readonly string[];
  readonly issuerCommonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const TLS_EXTENDED_KEY_USAGE: Readonly<Record<CertificateRole, { serverAuth?: true; clientAuth?: true }>> = {
  coordinator: { serverAuth: true },
  participant: { clientAuth: true },
  operator: { clientAuth: true },
};

/** GeneralName tags of RFC 5280 section 4.2.1.6 as forge spells them. */
const GENERAL_NAME_DNS = 2;
const GENERAL_NAME_IP = 7;

export async function issueCertificate(ca: CertificateAuthority, options: IssueCertificateOptions): Promise<IssuedCertificate> {
  const commonName = validateEntityName(options.commonName, 'commonName');
  const role = validateRole(options.role);
  const altNames = checkHostsForRole(role, options.hosts ?? []);
  const authority = parseAuthority(ca);
  const now = options.now ?? new Date();
  // With neither validDays nor notAfter given, the default lifetime stops at the CA's own expiry rather
  // than failing; an explicit request that outlives the CA is an error the caller should see.
  const defaulted = options.validDays === undefined && options.notAfter === undefined;
  const requested = resolveValidity(options, DEFAULT_LEAF_VALID_DAYS, now);
  const validity =
    defaulted && requested.notAfter.getTime() > ca.notAfter.getTime() ? { ...requested, notAfter: ca.notAfter } : requested;
  if (validity.notAfter.getTime() > ca.notAfter.getTime()) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'OUTLIVES_CA',
      `notAfter (${validity.notAfter.toISOString()}) must not be later than the CA's notAfter (${ca.notAfter.toISOString()}): choose fewer validDays or renew the CA first`,
    );
  }

  const keys = await generateRsaKeyPair();
  const serial = randomSerial();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  certificate.serialNumber = serialToDerHex(serial);
  certificate.validity.notBefore = validity.notBefore;
  certificate.validity.notAfter = validity.notAfter;
  certificate.setSubject([
    { name: 'organizationalUnitName', value: role },
    { name: 'commonName', value: commonName },
  ]);
  certificate.setIssuer(authority.certificate.subject.attributes);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    // digitalSignature: TLS 1.3 CertificateVerify and the RSA-PSS round signatures of DESIGN.md;
    // keyEncipherment: RSA key transport, kept for peers that still negotiate TLS 1.2.
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', ...TLS_EXTENDED_KEY_USAGE[role] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: authority.keyIdentifier },
  ];
  if (altNames.length > 0) {
    extensions.push({
      name: 'subjectAltName',
      altNames: altNames.map((san) =>
        san.kind === 'dns' ? { type: GENERAL_NAME_DNS, value: san.value } : { type: GENERAL_NAME_IP, ip: san.value },
      ),
    });
  }
  certificate.setExtensions(extensions);
  certificate.sign(authority.privateKey, forge.md.sha256.create());

  return {
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
    serial,
    commonName,
    role,
    hosts: altNames.map((san) => san.value),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  };
}

/**
 * Renewal: a fresh key and a fresh serial for the same identity, role and hosts as `currentCertificatePem`
 * (which must come from this CA). The old certificate stays valid until it expires or is revoked, so a
 * site can switch over without downtime.
 */
export async function renewCertificate(
  ca: CertificateAuthority,
  currentCertificatePem: string,
  options: ValidityOptions & { readonly now?: Date } = {},
): Promise<IssuedCertificate> {
  const current = describeCertificate(currentCertificatePem, 'certificate to renew');
  const authority = parseAuthority(ca);
  const currentCertificate = parseCertificatePem(currentCertificatePem, 'certificate to renew');
  if (!issuedBy(authority.certificate, currentCertificate)) {
    throw new PkiError(
      'FAILED_PRECONDITION',
      'INVALID_PEM',
      `certificate to renew (CN=${current.commonName}, serial ${current.serial}) was not issued by CA "${ca.commonName}"`,
    );
  }
  return issueCertificate(ca, { ...options, commonName: current.commonName, role: current.role, hosts: current.hosts });
}

/** Reads CN, role (OU), serial, SANs and validity back from a PEM certificate. */
export function describeCertificate(certificatePem: string, what = 'certificate'): CertificateSummary {
  const certificate = parseCertificatePem(certificatePem, what);
  const organizationalUnits = certificate.subject.attributes
    .filter((attribute) => attribute.shortName === 'OU')
    .map((attribute) => String(attribute.value ?? ''));
  let role: CertificateRole;
  try {
    role = roleFromOrganizationalUnits(organizationalUnits, what);
  } catch (error) {
    if (error instanceof CertificateRoleError) throw new PkiError('INVALID_ARGUMENT', 'INVALID_ROLE', error.message, { cause: error });
    throw error;
  }
  const subjectAltName = certificate.getExtension('subjectAltName') as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
  const hosts = (subjectAltName?.altNames ?? []).flatMap((name) => {
    if (name.type === GENERAL_NAME_DNS && name.value !== undefined) return [name.value];
    if (name.type === GENERAL_NAME_IP && name.ip !== undefined) return [name.ip];
    return [];
  });
  return {
    commonName: String(certificate.subject.getField('CN')?.value ?? ''),
    role,
    serial: serialFromDerHex(certificate.serialNumber, `${what} serial`),
    hosts,
    issuerCommonName: String(certificate.issuer.getField('CN')?.value ?? ''),
    notBefore: certificate.validity.notBefore,
    notAfter: certificate.validity.notAfter,
  };
}

/** forge's verify throws when the issuer name differs and returns false when the signature does. */
function issuedBy(issuer: forge.pki.Certificate, subject: forge.pki.Certificate): boolean {
  try {
    return issuer.verify(subject);
  } catch {
    return false;
  }
}

function checkHostsForRole(role: CertificateRole, hosts: readonly string[]): SubjectAltName[] {
  if (role === 'coordinator' && hosts.length === 0) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_HOST',
      'hosts must list at least one DNS name or IP address participants use to reach the coordinator; got none',
    );
  }
  if (role !== 'coordinator' && hosts.length > 0) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_HOST',
      `hosts apply to coordinator certificates only; got ${hosts.length} for a ${role} certificate`,
    );
  }
  return parseHosts(hosts);
}
