/**
 * Certificates the federation's tooling refuses to make, crafted with node-forge for red-team tests:
 * a CA as fedgate created it before it set pathLenConstraint 0, an intermediate CA signed by the
 * federation CA, leaves minted below that intermediate for any role, and leaves signed directly by the
 * CA whose CN breaks the federation's name rule (control characters, 2 KB). Keys come from node:crypto
 * (fast) and are converted for forge. Nothing here is written to disk.
 */
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { certificateAuthorityFromPem, parseAuthority } from '../../certs/authority.js';
import type { CertificateAuthority } from '../../certs/index.js';
import type { CertificateRole } from '../../crypto/certificate-role.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its key, PEM. */
export interface CraftedCertificate {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The chain a holder presents: this certificate, then its issuer when that is an intermediate. */
  readonly chainPem: string;
}

interface Signer {
  readonly certificate: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
  /** PEM of the signer when it is an intermediate (sent along with the leaf), empty for the root. */
  readonly chainPem: string;
}

function freshKey(): { forgeKey: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { forgeKey: forge.pki.privateKeyFromPem(pem), forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()), pem };
}

function serial(): string {
  return `4${forge.util.bytesToHex(forge.random.getBytesSync(15))}`;
}

function validFor(certificate: forge.pki.Certificate, days: number): void {
  certificate.validity.notBefore = new Date(Date.now() - 60_000);
  certificate.validity.notAfter = new Date(Date.now() + days * DAY_MS);
}

/** A federation CA without a path length constraint, as `fedgate certs init` made it before. */
export function legacyAuthority(commonName = 'fedgate legacy CA'): CertificateAuthority {
  const key = freshKey();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = key.forgePublic;
  certificate.serialNumber = serial();
  validFor(certificate, 30);
  const subject = [{ name: 'commonName', value: commonName }];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  certificate.sign(key.forgeKey, forge.md.sha256.create());
  return certificateAuthorityFromPem(forge.pki.certificateToPem(certificate), key.pem, 'legacy CA');
}

function rootSigner(ca: CertificateAuthority): Signer {
  const parsed = parseAuthority(ca);
  return { certificate: parsed.certificate, key: parsed.privateKey, chainPem: '' };
}

/** A certificate with cA TRUE signed by the federation CA: what must never act as an intermediate. */
export function intermediateAuthority(ca: CertificateAuthority, commonName = 'rogue intermediate'): Signer & CraftedCertificate {
  const root = rootSigner(ca);
  const key = freshKey();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = key.forgePublic;
  certificate.serialNumber = serial();
  validFor(certificate, 10);
  certificate.setSubject([{ name: 'commonName', value: commonName }]);
  certificate.setIssuer(root.certificate.subject.attributes);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  certificate.sign(root.key, forge.md.sha256.create());
  const certificatePem = forge.pki.certificateToPem(certificate);
  return { certificate, key: key.forgeKey, chainPem: certificatePem, certificatePem, privateKeyPem: key.pem };
}

export interface LeafOptions {
  readonly commonName: string;
  readonly role: CertificateRole;
  /** Subject alternative names (coordinator certificates). @default none */
  readonly hosts?: readonly string[];
}

/** A leaf signed by `issuer`: the federation CA itself (any CN, unchecked) or an intermediate. */
export function craftLeaf(issuer: CertificateAuthority | (Signer & CraftedCertificate), options: LeafOptions): CraftedCertificate {
  const signer = 'chainPem' in issuer ? issuer : rootSigner(issuer);
  const key = freshKey();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = key.forgePublic;
  certificate.serialNumber = serial();
  validFor(certificate, 5);
  certificate.setSubject([
    { name: 'organizationalUnitName', value: options.role },
    { name: 'commonName', value: options.commonName },
  ]);
  certificate.setIssuer(signer.certificate.subject.attributes);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', ...(options.role === 'coordinator' ? { serverAuth: true } : { clientAuth: true }) },
  ];
  if (options.hosts !== undefined) {
    extensions.push({ name: 'subjectAltName', altNames: options.hosts.map((host) => (/^[\d.]+$/.test(host) ? { type: 7, ip: host } : { type: 2, value: host })) });
  }
  certificate.setExtensions(extensions);
  certificate.sign(signer.key, forge.md.sha256.create());
  const certificatePem = forge.pki.certificateToPem(certificate);
  return { certificatePem, privateKeyPem: key.pem, chainPem: `${certificatePem}${signer.chainPem}` };
}
