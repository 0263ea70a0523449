/**
 * The one role rule (crypto/certificate-role.ts): one table of certificate subjects, each checked against
 * the parser and against every place that reads a role from a certificate (the service edge's peer
 * identity, the CA tooling's certificate summary), so none of them can be laxer than the others.
 */
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { describeCertificate, PkiError } from '../../../certs/index.js';
import {
  CERTIFICATE_ROLES,
  CertificateRoleError,
  isCertificateRole,
  roleFromCertificate,
  roleFromSubject,
  type CertificateRole,
  type CertificateRoleProblem,
} from '../../../crypto/index.js';
import { FedgateError, identityFromCertificate } from '../../../proto/index.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const forgePrivate = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
const forgePublic = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());

/** A self-signed certificate with exactly these subject attributes, in this order. */
function certificateWith(subject: readonly (readonly [string, string])[]): string {
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forgePublic;
  certificate.serialNumber = '01';
  certificate.validity.notBefore = new Date('2026-01-01T00:00:00Z');
  certificate.validity.notAfter = new Date('2027-01-01T00:00:00Z');
  const attributes = subject.map(([shortName, value]) => ({ shortName, value }));
  certificate.setSubject(attributes);
  certificate.setIssuer(attributes);
  certificate.sign(forgePrivate, forge.md.sha256.create());
  return forge.pki.certificateToPem(certificate);
}

const CN = (value: string) => ['CN', value] as const;
const OU = (value: string) => ['OU', value] as const;

const SUBJECTS: readonly (readonly [string, readonly (readonly [string, string])[], CertificateRole | CertificateRoleProblem])[] = [
  ['a participant', [OU('participant'), CN('site-1')], 'participant'],
  ['a coordinator', [OU('coordinator'), CN('coordinator')], 'coordinator'],
  ['an operator', [OU('operator'), CN('alice')], 'operator'],
  ['no OU', [CN('site-1')], 'MISSING'],
  ['the role in the CN only', [CN('operator')], 'MISSING'],
  ['two different OUs', [OU('participant'), OU('operator'), CN('site-1')], 'AMBIGUOUS'],
  ['the same OU twice', [OU('participant'), OU('participant'), CN('site-1')], 'AMBIGUOUS'],
  ['an OU that is not a role', [OU('admin'), CN('site-1')], 'UNKNOWN'],
  ['a role in mixed case', [OU('Participant'), CN('site-1')], 'UNKNOWN'],
  ['a role in upper case', [OU('OPERATOR'), CN('alice')], 'UNKNOWN'],
  ['a role with a trailing space', [OU('operator '), CN('alice')], 'UNKNOWN'],
  ['an empty OU', [OU(''), CN('site-1')], 'UNKNOWN'],
];

function problemOf(run: () => unknown): CertificateRoleProblem {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CertificateRoleError);
    const roleError = error as CertificateRoleError;
    expect([roleError.code, roleError.reason]).toEqual(['PERMISSION_DENIED', 'CERTIFICATE_ROLE']);
    expect(roleError.message).toContain('must carry exactly one subject OU among participant, coordinator, operator');
    return roleError.problem;
  }
  throw new Error('expected a CertificateRoleError');
}

function fedgateReason(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return (error as FedgateError).reason;
  }
  throw new Error('expected a FedgateError');
}

describe('the role of a certificate', () => {
  it('has one list of roles', () => {
    expect(CERTIFICATE_ROLES).toEqual(['participant', 'coordinator', 'operator']);
    expect(CERTIFICATE_ROLES.every(isCertificateRole)).toBe(true);
    expect(['Participant', 'admin', '', undefined, 3].some(isCertificateRole)).toBe(false);
  });

  it.each(SUBJECTS)('%s: the parser, the service edge and the CA tooling agree', (_case, subject, expected) => {
    const pem = certificateWith(subject);
    const x509 = new X509Certificate(pem);
    // What grpc-js hands the service edge has the same shape as the legacy object.
    const peer = { ...x509.toLegacyObject(), serialNumber: '01' } as unknown as PeerCertificate;
    if (isCertificateRole(expected)) {
      expect(roleFromCertificate(x509)).toBe(expected);
      expect(roleFromSubject(peer.subject)).toBe(expected);
      expect(identityFromCertificate(peer).role).toBe(expected);
      expect(describeCertificate(pem).role).toBe(expected);
      return;
    }
    expect(problemOf(() => roleFromCertificate(x509))).toBe(expected);
    expect(problemOf(() => roleFromSubject(peer.subject))).toBe(expected);
    expect(fedgateReason(() => identityFromCertificate(peer))).toBe(expected === 'UNKNOWN' ? 'UNKNOWN_ROLE' : 'AMBIGUOUS_IDENTITY');
    let summaryError: unknown;
    try {
      describeCertificate(pem);
    } catch (error) {
      summaryError = error;
    }
    expect(summaryError).toBeInstanceOf(PkiError);
    expect((summaryError as PkiError).reason).toBe('INVALID_ROLE');
  });
});
