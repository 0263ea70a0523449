import { sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PkiError, createCertificateRevocationList, verifyCertificateRevocationList } from '../../../certs/index.js';
import { OID, subjectNameOf } from '../../../certs/crl.js';
import { der } from '../../../certs/der.js';
import { createTempDirectory, createTestPki, opensslCli, runOpenssl } from '../../support/pki.js';
import { checkSystemDependency } from '../../support/system-deps.js';

const pki = await createTestPki();
const foreign = await createTestPki('foreign CA');
const revoked = await pki.participant('site-revoked');
const kept = await pki.participant('site-kept');
const crlPem = pki.crl([revoked.serial], 42n);
const temp = await createTempDirectory();
afterAll(() => temp.remove());

function pkiError(run: () => unknown): PkiError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PkiError);
    return error as PkiError;
  }
  throw new Error('expected a PkiError');
}

describe('CRL verification', () => {
  it('parses our CRL into revoked serials, update times and the CRL number', () => {
    const crl = verifyCertificateRevocationList(crlPem, pki.ca.certificatePem);
    expect([...crl.revokedSerials]).toEqual([revoked.serial]);
    expect(crl.revokedSerials.has(kept.serial)).toBe(false);
    expect(crl.crlNumber).toBe(42n);
    expect(crl.nextUpdate.getTime() - crl.thisUpdate.getTime()).toBe(30 * 86_400_000);
    expect(crl.entries[0]?.revokedAt.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('accepts an empty CRL and GeneralizedTime after 2049', () => {
    const empty = createCertificateRevocationList(pki.ca, { revoked: [], crlNumber: 1n, nextUpdate: new Date('2051-06-01T00:00:00Z') });
    const crl = verifyCertificateRevocationList(empty, pki.ca.certificatePem);
    expect(crl.revokedSerials.size).toBe(0);
    expect(crl.nextUpdate.toISOString()).toBe('2051-06-01T00:00:00.000Z');
  });

  it('rejects a CRL signed by another CA', () => {
    const error = pkiError(() => verifyCertificateRevocationList(foreign.crl([revoked.serial]), pki.ca.certificatePem));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('CRL_SIGNATURE_INVALID');
  });

  it('rejects a CRL whose content was altered after signing', () => {
    const der = Buffer.from(crlPem.replace(/-----[A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    // Canonical serials drop leading zeros; DER (and OpenSSL) hold whole bytes.
    const serialAt = der.indexOf(Buffer.from(evenHex(revoked.serial).slice(0, 8), 'hex'));
    expect(serialAt).toBeGreaterThan(0);
    const tampered = Buffer.from(der);
    tampered[serialAt] = (tampered[serialAt] ?? 0) ^ 0x01;
    expect(pkiError(() => verifyCertificateRevocationList(tampered, pki.ca.certificatePem)).reason).toBe('CRL_SIGNATURE_INVALID');
  });

  it('rejects a CRL past its nextUpdate and one from the future', () => {
    const later = new Date(Date.now() + 31 * 86_400_000);
    const expired = pkiError(() => verifyCertificateRevocationList(crlPem, pki.ca.certificatePem, { now: later }));
    expect(expired.code).toBe('FAILED_PRECONDITION');
    expect(expired.reason).toBe('CRL_EXPIRED');
    expect(expired.message).toMatch(/publish a fresh crl\.pem/);
    const earlier = new Date(Date.now() - 86_400_000);
    expect(pkiError(() => verifyCertificateRevocationList(crlPem, pki.ca.certificatePem, { now: earlier })).reason).toBe('CRL_NOT_YET_VALID');
  });

  /** A CA-signed CRL with hand-picked fields, to reach the checks a well-formed CRL never trips. */
  function signedCrl(fields: { version?: boolean; extensions?: ReturnType<typeof der.sequence>[] }): Buffer {
    const algorithm = der.sequence([der.oid(OID.sha256WithRSAEncryption), der.null()]);
    const tbs = der.sequence([
      ...(fields.version === false ? [] : [der.unsignedInteger(1n)]),
      algorithm,
      subjectNameOf(pki.ca.certificatePem),
      der.time(new Date(Date.now() - 1000)),
      der.time(new Date(Date.now() + 86_400_000)),
      ...(fields.extensions === undefined ? [] : [der.explicit(0, der.sequence(fields.extensions))]),
    ]);
    const signature = sign('sha256', der.encode(tbs), pki.ca.privateKeyPem);
    return der.encode(der.sequence([tbs, algorithm, der.bitString(signature.toString('binary'))]));
  }

  it('refuses a correctly signed CRL with an unknown critical extension (RFC 5280 section 5.2)', () => {
    const issuingDistributionPoint = der.sequence([der.oid('2.5.29.28'), der.boolean(true), der.octetString('\x30\x00')]);
    const error = pkiError(() => verifyCertificateRevocationList(signedCrl({ extensions: [issuingDistributionPoint] }), pki.ca.certificatePem));
    expect(error.reason).toBe('CRL_UNSUPPORTED');
    expect(error.message).toMatch(/critical extension 2\.5\.29\.28/);
    expect(verifyCertificateRevocationList(signedCrl({}), pki.ca.certificatePem).crlNumber).toBeNull();
  });

  it('refuses a v1 CRL', () => {
    const error = pkiError(() => verifyCertificateRevocationList(signedCrl({ version: false }), pki.ca.certificatePem));
    expect(error.reason).toBe('CRL_UNSUPPORTED');
    expect(error.message).toMatch(/version must be v2/);
  });

  it.each([
    ['not PEM at all', 'hello', 'INVALID_PEM'],
    ['a certificate instead of a CRL', pki.coordinator.certificatePem, 'INVALID_PEM'],
    ['random bytes', Buffer.from('3082ffff0102', 'hex'), 'CRL_MALFORMED'],
    ['a truncated CRL', Buffer.from(crlPem.replace(/-----[A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64').subarray(0, 100), 'CRL_MALFORMED'],
    ['an empty SEQUENCE', Buffer.from('3000', 'hex'), 'CRL_MALFORMED'],
  ])('rejects %s as malformed input', (_case, input, reason) => {
    const error = pkiError(() => verifyCertificateRevocationList(input, pki.ca.certificatePem));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.reason).toBe(reason);
  });
});

const openssl = checkSystemDependency(opensslCli);

describe.skipIf(openssl.skip)(`CRL accepted by OpenSSL ${openssl.reason}`, () => {
  it('prints as a standard v2 CRL with our issuer, extensions and entry', async () => {
    const crlPath = join(temp.path, 'crl.pem');
    const caPath = join(temp.path, 'ca.pem');
    await writeFile(crlPath, crlPem);
    await writeFile(caPath, pki.ca.certificatePem);
    const printed = runOpenssl(['crl', '-inform', 'PEM', '-in', crlPath, '-text', '-noout']);
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/Version 2 \(0x1\)/);
    expect(printed.stdout).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    expect(printed.stdout).toMatch(/Issuer: CN = fedgate test CA/);
    expect(printed.stdout).toMatch(/X509v3 CRL Number: \s*42/);
    expect(printed.stdout).toMatch(/X509v3 Authority Key Identifier/);
    expect(printed.stdout).toContain(`Serial Number: ${evenHex(revoked.serial)}`);
    const signature = runOpenssl(['crl', '-in', crlPath, '-noout', '-CAfile', caPath]);
    expect(signature.stderr).toMatch(/verify OK/);
  });

  it('makes `openssl verify -crl_check` reject the revoked certificate and accept the other', async () => {
    const bundlePath = join(temp.path, 'ca-and-crl.pem');
    await writeFile(bundlePath, pki.ca.certificatePem + crlPem);
    await writeFile(join(temp.path, 'revoked.pem'), revoked.certificatePem);
    await writeFile(join(temp.path, 'kept.pem'), kept.certificatePem);
    const rejected = runOpenssl(['verify', '-crl_check', '-CAfile', bundlePath, 'revoked.pem'], temp.path);
    expect(rejected.status).not.toBe(0);
    expect(rejected.stdout + rejected.stderr).toMatch(/certificate revoked/);
    const accepted = runOpenssl(['verify', '-crl_check', '-CAfile', bundlePath, 'kept.pem'], temp.path);
    expect(accepted.status, accepted.stderr).toBe(0);
    expect(accepted.stdout).toMatch(/kept\.pem: OK/);
  });
});

/** A canonical serial (no leading zeros) as whole bytes of hex, as DER stores it and OpenSSL prints it. */
function evenHex(serial: string): string {
  return serial.length % 2 === 1 ? `0${serial}` : serial;
}
