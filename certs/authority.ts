/**
 * The federation's certificate authority: a self-signed RSA root that signs every participant,
 * coordinator and operator certificate and the CRL. DESIGN.md: its key belongs offline to the
 * federation's governance; only the CA certificate travels.
 */
import forge from 'node-forge';
import { PkiError } from './errors.js';
import { generateRsaKeyPair } from './keys.js';
import { randomSerial, serialFromDerHex, serialToDerHex } from './serial.js';
import { resolveValidity, validateDisplayName, validateValidDays, type ValidityOptions } from './validation.js';

export interface CreateCertificateAuthorityOptions {
  /** Display name of the federation CA, e.g. "Acme Oncology Federation CA". */
  readonly commonName: string;
  readonly validDays: number;
  /** Clock for tests; @default new Date() */
  readonly now?: Date;
}

export interface CertificateAuthority {
  readonly certificatePem: string;
  /** PKCS#8 PEM. Secret: never logged, written with mode 0600 only. */
  readonly privateKeyPem: string;
  readonly commonName: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** What issuing and CRL signing need from a CA, parsed once per CA object. */
export interface ParsedAuthority {
  readonly certificate: forge.pki.Certificate;
  readonly privateKey: forge.pki.rsa.PrivateKey;
  /** Raw bytes (forge binary string) of the CA's subjectKeyIdentifier, for authorityKeyIdentifier. */
  readonly keyIdentifier: string;
}

const parsedAuthorities = new WeakMap<CertificateAuthority, ParsedAuthority>();

export async function createCertificateAuthority(options: CreateCertificateAuthorityOptions): Promise<CertificateAuthority> {
  const commonName = validateDisplayName(options.commonName, 'commonName');
  const validDays = validateValidDays(options.validDays);
  const validity = resolveValidity({ validDays }, validDays, options.now ?? new Date());
  const keys = await generateRsaKeyPair();
  const serial = randomSerial();

  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  certificate.serialNumber = serialToDerHex(serial);
  certificate.validity.notBefore = validity.notBefore;
  certificate.validity.notAfter = validity.notAfter;
  const subject = [{ name: 'commonName', value: commonName }];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  // RFC 5280 section 4.2.1.9 and 4.2.1.3: a CA certificate asserts cA=TRUE (critical) and the
  // keyCertSign and cRLSign key usages (critical) so verifiers accept both its certificates and CRLs.
  // pathLenConstraint 0: the federation CA signs every leaf itself, so a certificate it signed with cA
  // TRUE (by mistake or by a stolen request) can never act as an intermediate: OpenSSL refuses the chain
  // on both sides of every handshake (and both sides check the issuer themselves, for CAs made before).
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  const privateKey = forge.pki.privateKeyFromPem(keys.privateKeyPem);
  certificate.sign(privateKey, forge.md.sha256.create());

  const authority: CertificateAuthority = {
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
    commonName,
    serial,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  };
  parsedAuthorities.set(authority, { certificate, privateKey, keyIdentifier: keyIdentifierOf(certificate) });
  return authority;
}

/**
 * Rebuilds a CertificateAuthority from its PEM files, checking that the certificate is a CA and that the
 * key belongs to it (a swapped key file would otherwise sign certificates nobody can verify).
 */
export function certificateAuthorityFromPem(certificatePem: string, privateKeyPem: string, source = 'CA'): CertificateAuthority {
  const parsed = parseAndCheck(certificatePem, privateKeyPem, source);
  const { certificate } = parsed;
  const authority: CertificateAuthority = {
    certificatePem,
    privateKeyPem,
    commonName: String(certificate.subject.getField('CN')?.value ?? ''),
    serial: serialFromDerHex(certificate.serialNumber, `${source} certificate serial`),
    notBefore: certificate.validity.notBefore,
    notAfter: certificate.validity.notAfter,
  };
  parsedAuthorities.set(authority, parsed);
  return authority;
}

/** forge objects for signing; parsed (and checked) lazily, cached per CertificateAuthority object. */
export function parseAuthority(authority: CertificateAuthority): ParsedAuthority {
  let parsed = parsedAuthorities.get(authority);
  if (parsed === undefined) {
    parsed = parseAndCheck(authority.certificatePem, authority.privateKeyPem, 'CA');
    parsedAuthorities.set(authority, parsed);
  }
  return parsed;
}

function parseAndCheck(certificatePem: string, privateKeyPem: string, source: string): ParsedAuthority {
  const certificate = parseCertificatePem(certificatePem, `${source} certificate`);
  const basicConstraints = certificate.getExtension('basicConstraints') as { cA?: boolean } | null;
  if (basicConstraints?.cA !== true) {
    throw new PkiError('FAILED_PRECONDITION', 'NOT_A_CA', `${source} certificate is not a CA certificate (basicConstraints cA is not TRUE)`);
  }
  const privateKey = parsePrivateKeyPem(privateKeyPem, `${source} private key`);
  const publicKey = certificate.publicKey as forge.pki.rsa.PublicKey;
  if (publicKey.n.compareTo(privateKey.n) !== 0 || publicKey.e.compareTo(privateKey.e) !== 0) {
    throw new PkiError('FAILED_PRECONDITION', 'INVALID_PEM', `${source} private key does not belong to the ${source} certificate`);
  }
  return { certificate, privateKey, keyIdentifier: keyIdentifierOf(certificate) };
}

export function parseCertificatePem(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (error) {
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_PEM', `${what} is not a PEM X.509 certificate ("BEGIN CERTIFICATE")`, { cause: error });
  }
}

function parsePrivateKeyPem(pem: string, what: string): forge.pki.rsa.PrivateKey {
  try {
    return forge.pki.privateKeyFromPem(pem);
  } catch (error) {
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_PEM', `${what} is not a PEM RSA private key ("BEGIN PRIVATE KEY")`, { cause: error });
  }
}

/** The CA's subjectKeyIdentifier (RFC 5280 section 4.2.1.2), or the method-1 SHA-1 of its key if absent. */
function keyIdentifierOf(certificate: forge.pki.Certificate): string {
  const extension = certificate.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  if (extension?.subjectKeyIdentifier !== undefined) return forge.util.hexToBytes(extension.subjectKeyIdentifier);
  return certificate.generateSubjectKeyIdentifier().getBytes();
}

export type { ValidityOptions };
