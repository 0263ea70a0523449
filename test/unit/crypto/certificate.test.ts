import { describe, expect, it } from 'vitest';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { CryptoError, normalizeSerial, verifyPeerCertificate, type TrustAnchor } from '../../../crypto/index.js';

// Keys come from node:crypto (fast) and are imported into node-forge, which builds the certificates.
function newKey(): { forgePrivate: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    forgePrivate: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()),
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    publicKey,
  };
}

type Key = ReturnType<typeof newKey>;
const NOW = new Date('2026-06-01T12:00:00Z');
const YEAR = 365 * 24 * 3600 * 1000;

interface CertificateSpec {
  subject: { shortName: string; value: string }[];
  serial: string;
  key: Key;
  issuer: { subject: { shortName: string; value: string }[]; key: Key };
  notBefore?: Date;
  notAfter?: Date;
  isCa?: boolean;
}

function build(spec: CertificateSpec): string {
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = spec.key.forgePublic;
  certificate.serialNumber = spec.serial;
  certificate.validity.notBefore = spec.notBefore ?? new Date(NOW.getTime() - YEAR);
  certificate.validity.notAfter = spec.notAfter ?? new Date(NOW.getTime() + YEAR);
  certificate.setSubject(spec.subject);
  certificate.setIssuer(spec.issuer.subject);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: spec.isCa ?? false },
    { name: 'keyUsage', digitalSignature: true, keyCertSign: spec.isCa ?? false, cRLSign: spec.isCa ?? false },
  ]);
  certificate.sign(spec.issuer.key.forgePrivate, forge.md.sha256.create());
  return forge.pki.certificateToPem(certificate);
}

const caKey = newKey();
const otherCaKey = newKey();
const siteKey = newKey();
const caSubject = [{ shortName: 'O', value: 'Federation' }, { shortName: 'CN', value: 'fedgate CA' }];
const ca = { subject: caSubject, key: caKey };
const caPem = build({ subject: caSubject, serial: '01', key: caKey, issuer: ca, isCa: true, notBefore: new Date(NOW.getTime() - 2 * YEAR), notAfter: new Date(NOW.getTime() + 5 * YEAR) });
// Same name as the real CA, different key: only the signature tells them apart.
const impostor = { subject: caSubject, key: otherCaKey };

const siteSubject = (cn: string, ...ous: string[]) => [
  { shortName: 'O', value: 'Federation' },
  ...ous.map((value) => ({ shortName: 'OU', value })),
  ...(cn === '' ? [] : [{ shortName: 'CN', value: cn }]),
];
const leaf = (overrides: Partial<CertificateSpec> = {}): string =>
  build({ subject: siteSubject('hospital-a', 'participant'), serial: '00a1b2', key: siteKey, issuer: ca, ...overrides });

const trust = (revoked: string[] = []): TrustAnchor => ({ caCertificate: new X509Certificate(caPem), revokedSerials: new Set(revoked) });

function expectCryptoError(run: () => unknown, code: string, reason: string, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CryptoError);
  expect(caught).toMatchObject({ code, reason });
  expect((caught as CryptoError).message).toContain(messagePart);
}

describe('verifyPeerCertificate', () => {
  it('accepts a valid participant certificate in PEM and in DER', () => {
    const pem = leaf();
    const fromPem = verifyPeerCertificate(pem, trust(), NOW, { siteId: 'hospital-a', role: 'participant' });
    expect(fromPem).toMatchObject({ siteId: 'hospital-a', role: 'participant', serial: 'A1B2' });
    expect(fromPem.publicKey.equals(siteKey.publicKey)).toBe(true);
    const der = new Uint8Array(new X509Certificate(pem).raw);
    expect(verifyPeerCertificate(der, trust(), NOW).siteId).toBe('hospital-a');
  });

  it('reads the role from the OU, for coordinators and operators too, and keeps special characters of the CN', () => {
    const coordinator = leaf({ subject: siteSubject('coord.example.org', 'coordinator'), serial: '05' });
    expect(verifyPeerCertificate(coordinator, trust(), NOW, { role: 'coordinator' }).role).toBe('coordinator');
    const operator = leaf({ subject: siteSubject('ops, team "blue"', 'operator'), serial: '06' });
    expect(verifyPeerCertificate(operator, trust(), NOW)).toMatchObject({ role: 'operator', siteId: 'ops, team "blue"' });
  });

  const rejections: { name: string; pem: () => string; trust?: () => TrustAnchor; expected?: { siteId?: string; role?: 'participant' | 'coordinator' | 'operator' }; reason: string; message: string }[] = [
    { name: 'issued by another CA with the same name', pem: () => leaf({ issuer: impostor }), reason: 'CERTIFICATE_UNTRUSTED', message: 'is not issued and signed by the federation CA' },
    { name: 'self-signed', pem: () => leaf({ issuer: { subject: siteSubject('hospital-a', 'participant'), key: siteKey } }), reason: 'CERTIFICATE_UNTRUSTED', message: 'hospital-a' },
    { name: 'a CA certificate used as a site certificate', pem: () => leaf({ isCa: true }), reason: 'CERTIFICATE_UNTRUSTED', message: 'is a CA certificate' },
    { name: 'expired', pem: () => leaf({ notBefore: new Date(NOW.getTime() - 2 * YEAR), notAfter: new Date(NOW.getTime() - 1000) }), reason: 'CERTIFICATE_EXPIRED', message: 'expired at' },
    { name: 'not yet valid', pem: () => leaf({ notBefore: new Date(NOW.getTime() + 60_000) }), reason: 'CERTIFICATE_NOT_YET_VALID', message: 'is not valid before' },
    { name: 'revoked serial', pem: () => leaf(), trust: () => trust(['99', 'A1B2']), reason: 'CERTIFICATE_REVOKED', message: 'serial A1B2) is revoked' },
    { name: 'wrong role', pem: () => leaf(), expected: { role: 'coordinator' }, reason: 'CERTIFICATE_ROLE', message: 'has role "participant", expected "coordinator"' },
    { name: 'OU that is not a role', pem: () => leaf({ subject: siteSubject('hospital-a', 'admin') }), reason: 'CERTIFICATE_ROLE', message: 'got ["admin"]' },
    { name: 'no OU', pem: () => leaf({ subject: siteSubject('hospital-a') }), reason: 'CERTIFICATE_ROLE', message: 'exactly one subject OU' },
    { name: 'two OUs', pem: () => leaf({ subject: siteSubject('hospital-a', 'participant', 'coordinator') }), reason: 'CERTIFICATE_ROLE', message: '["participant","coordinator"]' },
    { name: 'wrong expected CN', pem: () => leaf(), expected: { siteId: 'hospital-b' }, reason: 'CERTIFICATE_IDENTITY', message: 'identifies site "hospital-a", expected "hospital-b"' },
    { name: 'no CN', pem: () => leaf({ subject: siteSubject('', 'participant') }), reason: 'CERTIFICATE_IDENTITY', message: 'exactly one non-empty subject CN' },
    { name: 'garbage bytes', pem: () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', reason: 'CERTIFICATE_MALFORMED', message: 'not a parseable X.509 certificate' },
  ];
  it.each(rejections)('rejects: $name', ({ pem, trust: anchor, expected, reason, message }) => {
    expectCryptoError(() => verifyPeerCertificate(pem(), (anchor ?? trust)(), NOW, expected), 'PERMISSION_DENIED', reason, message);
  });

  it('rejects everything once the CA itself has expired', () => {
    const pem = leaf();
    expectCryptoError(() => verifyPeerCertificate(pem, trust(), new Date(NOW.getTime() + 6 * YEAR)), 'PERMISSION_DENIED', 'CERTIFICATE_EXPIRED', 'federation CA certificate');
  });

  it('truncated DER is malformed', () => {
    const der = new Uint8Array(new X509Certificate(leaf()).raw);
    expectCryptoError(() => verifyPeerCertificate(der.subarray(0, der.length - 10), trust(), NOW), 'PERMISSION_DENIED', 'CERTIFICATE_MALFORMED', 'DER or PEM');
  });

  const invalid: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'certificate as a number', run: () => verifyPeerCertificate(5 as unknown as string, trust(), NOW), reason: 'INVALID_CERTIFICATE', message: 'DER bytes or a PEM string, got number 5' },
    { name: 'missing trust anchor', run: () => verifyPeerCertificate(leaf(), undefined as unknown as TrustAnchor, NOW), reason: 'INVALID_TRUST_ANCHOR', message: 'trust.caCertificate must be an X509Certificate' },
    { name: 'CA as PEM string', run: () => verifyPeerCertificate(leaf(), { caCertificate: caPem as unknown as X509Certificate, revokedSerials: new Set() }, NOW), reason: 'INVALID_TRUST_ANCHOR', message: 'got string' },
    { name: 'revoked serials as array', run: () => verifyPeerCertificate(leaf(), { caCertificate: new X509Certificate(caPem), revokedSerials: [] as unknown as Set<string> }, NOW), reason: 'INVALID_TRUST_ANCHOR', message: 'revokedSerials must be a Set' },
    { name: 'unnormalized revoked serial', run: () => verifyPeerCertificate(leaf(), trust(['00a1b2']), NOW), reason: 'INVALID_TRUST_ANCHOR', message: '"00a1b2"' },
    { name: 'trust anchor that is not a CA', run: () => verifyPeerCertificate(leaf(), { caCertificate: new X509Certificate(leaf()), revokedSerials: new Set() }, NOW), reason: 'INVALID_TRUST_ANCHOR', message: 'is not a CA certificate' },
    { name: 'invalid date', run: () => verifyPeerCertificate(leaf(), trust(), new Date(Number.NaN)), reason: 'INVALID_TIME', message: 'at must be a valid Date' },
    { name: 'time as a number', run: () => verifyPeerCertificate(leaf(), trust(), NOW.getTime() as unknown as Date), reason: 'INVALID_TIME', message: 'got number' },
  ];
  it.each(invalid)('argument check: $name', ({ run, reason, message }) => expectCryptoError(run, 'INVALID_ARGUMENT', reason, message));
});

describe('normalizeSerial', () => {
  it.each([
    ['00A1B2', 'A1B2'],
    ['a1b2', 'A1B2'],
    ['0x00ff', 'FF'],
    ['01:0a:FF', '10AFF'],
    ['0000', '0'],
    ['0', '0'],
  ])('%s -> %s', (input, output) => {
    expect(normalizeSerial(input)).toBe(output);
  });

  it.each(['', 'xyz', '0x', '12 g4', '-1'])('rejects %j', (input) => {
    expectCryptoError(() => normalizeSerial(input), 'INVALID_ARGUMENT', 'INVALID_SERIAL', 'hexadecimal');
  });
});
