import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  PkiError,
  certificateAuthorityFromPem,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  renewCertificate,
} from '../../../certs/index.js';
import { createTestPki } from '../../support/pki.js';

const pki = await createTestPki();
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function rejection(promise: Promise<unknown>): Promise<PkiError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(PkiError);
      return error as PkiError;
    },
  );
}

describe('certificate authority', () => {
  it('is a self-signed CA whose key matches its certificate', () => {
    const certificate = new X509Certificate(pki.ca.certificatePem);
    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toBe('CN=fedgate test CA');
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    const derived = createPublicKey(createPrivateKey(pki.ca.privateKeyPem)).export({ type: 'spki', format: 'pem' });
    expect(derived).toBe(certificate.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  it('round-trips through PEM and refuses a key that belongs elsewhere', async () => {
    const reloaded = certificateAuthorityFromPem(pki.ca.certificatePem, pki.ca.privateKeyPem);
    expect(reloaded.serial).toBe(pki.ca.serial);
    expect(reloaded.commonName).toBe('fedgate test CA');
    const other = await createCertificateAuthority({ commonName: 'other', validDays: 1 });
    expect(() => certificateAuthorityFromPem(pki.ca.certificatePem, other.privateKeyPem)).toThrow(/does not belong/);
    expect(() => certificateAuthorityFromPem(pki.coordinator.certificatePem, pki.coordinator.privateKeyPem)).toThrow(/not a CA/);
  });
});

describe('leaf certificates', () => {
  it('chain to the CA and carry the role in OU, never in the CN', async () => {
    const participant = await pki.participant('hospital-7');
    const certificate = new X509Certificate(participant.certificatePem);
    expect(certificate.checkIssued(new X509Certificate(pki.ca.certificatePem))).toBe(true);
    expect(certificate.verify(new X509Certificate(pki.ca.certificatePem).publicKey)).toBe(true);
    expect(certificate.subject.split('\n').sort()).toEqual(['CN=hospital-7', 'OU=participant']);
    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual([CLIENT_AUTH]);
    expect(describeCertificate(participant.certificatePem)).toMatchObject({ commonName: 'hospital-7', role: 'participant' });
  });

  it('gives the coordinator DNS and IP subject alternative names and serverAuth only', () => {
    const certificate = new X509Certificate(pki.coordinator.certificatePem);
    expect(certificate.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(certificate.keyUsage).toEqual([SERVER_AUTH]);
    expect(certificate.checkHost('localhost')).toBe('localhost');
    expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(certificate.subject).toContain('OU=coordinator');
  });

  it('gives operators clientAuth and their own role', async () => {
    const operator = await pki.operator('alice');
    expect(new X509Certificate(operator.certificatePem).keyUsage).toEqual([CLIENT_AUTH]);
    expect(describeCertificate(operator.certificatePem).role).toBe('operator');
  });

  it('uses random 16-byte positive serials in upper-case hex without leading zeros', async () => {
    const serials = [pki.coordinator.serial, (await pki.participant()).serial, (await pki.participant()).serial];
    for (const serial of serials) {
      expect(serial).toMatch(/^[1-7][0-9A-F]{31}$|^[1-9A-F][0-9A-F]{0,30}$/);
    }
    expect(new Set(serials).size).toBe(3);
    const fromNode = new X509Certificate(pki.coordinator.certificatePem).serialNumber.replace(/^0+/, '');
    expect(fromNode).toBe(pki.coordinator.serial);
  });

  it('renews with a new key and serial for the same identity, role and hosts', async () => {
    const renewed = await renewCertificate(pki.ca, pki.coordinator.certificatePem);
    expect(renewed.serial).not.toBe(pki.coordinator.serial);
    expect(renewed.privateKeyPem).not.toBe(pki.coordinator.privateKeyPem);
    expect(describeCertificate(renewed.certificatePem)).toMatchObject({
      commonName: 'coordinator',
      role: 'coordinator',
      hosts: ['localhost', '127.0.0.1'],
    });
    const foreign = await createTestPki('foreign CA');
    const error = await rejection(renewCertificate(pki.ca, foreign.coordinator.certificatePem));
    expect(error.message).toMatch(/was not issued by CA "fedgate test CA"/);
  });

  it('honours explicit validity windows, including already expired ones', async () => {
    const expired = await pki.expiredParticipant();
    expect(new Date(new X509Certificate(expired.certificatePem).validTo).getTime()).toBeLessThan(Date.now());
    const short = await pki.issue({ commonName: 'short', role: 'participant', validDays: 2 });
    expect(short.notAfter.getTime() - short.notBefore.getTime()).toBeGreaterThan(2 * 86_400_000 - 1);
  });

  it.each([
    ['a CN with a slash', { commonName: 'site/../x', role: 'participant' }, 'INVALID_NAME', /commonName must be 1-64 characters/],
    ['an empty CN', { commonName: '', role: 'participant' }, 'INVALID_NAME', /got ""/],
    ['an unknown role', { commonName: 'x', role: 'admin' }, 'INVALID_ROLE', /role must be one of participant, coordinator, operator; got "admin"/],
    ['a coordinator without hosts', { commonName: 'c', role: 'coordinator' }, 'INVALID_HOST', /at least one DNS name or IP/],
    ['hosts on a participant', { commonName: 'p', role: 'participant', hosts: ['localhost'] }, 'INVALID_HOST', /coordinator certificates only/],
    ['a malformed host', { commonName: 'c', role: 'coordinator', hosts: ['bad host'] }, 'INVALID_HOST', /hosts\[0\] must be a DNS name/],
    ['zero valid days', { commonName: 'p', role: 'participant', validDays: 0 }, 'INVALID_VALIDITY', /validDays must be an integer/],
    ['a window past the CA', { commonName: 'p', role: 'participant', validDays: 400 }, 'OUTLIVES_CA', /must not be later than the CA's notAfter/],
    [
      'notAfter before notBefore',
      { commonName: 'p', role: 'participant', notBefore: new Date(2_000_000_000_000), notAfter: new Date(1_900_000_000_000) },
      'INVALID_VALIDITY',
      /must be later than notBefore/,
    ],
  ])('rejects %s', async (_case, options, reason, message) => {
    const error = await rejection(issueCertificate(pki.ca, options as Parameters<typeof issueCertificate>[1]));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
  });
});
