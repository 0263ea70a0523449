import { X509Certificate } from 'node:crypto';
import { chmod, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PkiError,
  caDirectoryPaths,
  describeCertificate,
  initCertificateAuthority,
  issueCoordinatorBundle,
  issueOperatorBundle,
  issueParticipantBundle,
  loadCertificateAuthority,
  readRevocationList,
  revokeCertificate,
  verifyCertificateRevocationList,
  writeCrl,
} from '../../../certs/index.js';
import { createTempDirectory, type TempDirectory } from '../../support/pki.js';

let temp: TempDirectory;
let caDir: string;

beforeAll(async () => {
  temp = await createTempDirectory();
  caDir = join(temp.path, 'ca');
  await initCertificateAuthority({ dir: caDir, commonName: 'Directory Test CA', validDays: 60 });
});
afterAll(() => temp.remove());

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function pkiRejection(promise: Promise<unknown>): Promise<PkiError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PkiError);
  return error as PkiError;
}

describe('certs init', () => {
  it('writes ca.pem, a 0600 key in a 0700 private directory and an empty signed CRL', async () => {
    const paths = caDirectoryPaths(caDir);
    expect(await modeOf(paths.privateKey)).toBe(0o600);
    expect(await modeOf(join(caDir, 'private'))).toBe(0o700);
    const caPem = await readFile(paths.certificate, 'utf8');
    expect(new X509Certificate(caPem).subject).toBe('CN=Directory Test CA');
    const crl = verifyCertificateRevocationList(await readFile(paths.crl, 'utf8'), caPem);
    expect(crl.revokedSerials.size).toBe(0);
    expect(crl.crlNumber).toBe(1n);
    expect((await readdir(caDir)).filter((name) => name.includes('.tmp') || name === '.lock')).toEqual([]);
  });

  it('refuses to overwrite an existing CA', async () => {
    const error = await pkiRejection(initCertificateAuthority({ dir: caDir, commonName: 'again' }));
    expect(error.code).toBe('ALREADY_EXISTS');
    expect(error.message).toContain(`CA already initialised in ${caDir}`);
  });
});

describe('certs issue', () => {
  it('writes a participant bundle: ca.pem, NAME.pem, NAME.key.pem (0600) and crl.pem', async () => {
    const bundle = await issueParticipantBundle({ dir: caDir, name: 'clinic-3' });
    expect(bundle.directory).toBe(join(caDir, 'bundles', 'participant', 'clinic-3'));
    expect((await readdir(bundle.directory)).sort()).toEqual(['ca.pem', 'clinic-3.key.pem', 'clinic-3.pem', 'crl.pem']);
    expect(await modeOf(bundle.privateKeyPath)).toBe(0o600);
    expect(await modeOf(bundle.directory)).toBe(0o700);
    const certificatePem = await readFile(bundle.certificatePath, 'utf8');
    expect(describeCertificate(certificatePem)).toMatchObject({ commonName: 'clinic-3', role: 'participant', serial: bundle.certificate.serial });
    const caPem = await readFile(bundle.caCertificatePath, 'utf8');
    expect(new X509Certificate(certificatePem).verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(bundle.certificate).not.toHaveProperty('privateKeyPem');
  });

  it('issues coordinator certificates with the requested hosts and keeps them on renewal', async () => {
    const first = await issueCoordinatorBundle({ dir: caDir, hosts: ['fl.example.org', '10.0.0.5'] });
    expect(new X509Certificate(await readFile(first.certificatePath, 'utf8')).subjectAltName).toBe('DNS:fl.example.org, IP Address:10.0.0.5');
    const refused = await pkiRejection(issueCoordinatorBundle({ dir: caDir, hosts: ['fl.example.org'] }));
    expect(refused.reason).toBe('BUNDLE_EXISTS');
    const renewed = await issueCoordinatorBundle({ dir: caDir, renew: true });
    expect(renewed.certificate.serial).not.toBe(first.certificate.serial);
    expect(renewed.certificate.hosts).toEqual(['fl.example.org', '10.0.0.5']);
  });

  it('issues operator bundles and rejects names that are not safe file names', async () => {
    const operator = await issueOperatorBundle({ dir: caDir, name: 'ops.alice' });
    expect(operator.certificate.role).toBe('operator');
    const error = await pkiRejection(issueParticipantBundle({ dir: caDir, name: '../escape' }));
    expect(error.reason).toBe('INVALID_NAME');
  });
});

describe('certs revoke', () => {
  it('persists revocations, reloads them and publishes a fresh signed CRL', async () => {
    const paths = caDirectoryPaths(caDir);
    const victim = await issueParticipantBundle({ dir: caDir, name: 'stolen-laptop' });
    const bystander = await issueParticipantBundle({ dir: caDir, name: 'honest-site' });
    const before = verifyCertificateRevocationList(await readFile(paths.crl, 'utf8'), await readFile(paths.certificate, 'utf8'));

    const result = await revokeCertificate({ dir: caDir, serial: victim.certificate.serial.toLowerCase() });
    expect(result.alreadyRevoked).toBe(false);
    expect(result.record).toMatchObject({ serial: victim.certificate.serial, commonName: 'stolen-laptop', role: 'participant' });

    const reloaded = await readRevocationList(paths.revocations);
    expect(reloaded.revoked.map((record) => record.serial)).toEqual([victim.certificate.serial]);
    expect(reloaded.crlNumber).toBe(result.crlNumber);
    const crl = verifyCertificateRevocationList(await readFile(paths.crl, 'utf8'), await readFile(paths.certificate, 'utf8'));
    expect(crl.revokedSerials.has(victim.certificate.serial)).toBe(true);
    expect(crl.revokedSerials.has(bystander.certificate.serial)).toBe(false);
    expect(crl.crlNumber).toBeGreaterThan(before.crlNumber ?? 0n);

    const again = await revokeCertificate({ dir: caDir, serial: victim.certificate.serial });
    expect(again.alreadyRevoked).toBe(true);
    expect(again.crlNumber).toBe(result.crlNumber + 1n);
    expect((await readRevocationList(paths.revocations)).revoked).toHaveLength(1);

    const refreshed = await writeCrl({ dir: caDir });
    expect(refreshed.crlNumber).toBe(again.crlNumber + 1n);
    const later = await issueParticipantBundle({ dir: caDir, name: 'newcomer' });
    const bundledCrl = verifyCertificateRevocationList(await readFile(later.crlPath, 'utf8'), await readFile(later.caCertificatePath, 'utf8'));
    expect(bundledCrl.revokedSerials.has(victim.certificate.serial)).toBe(true);
  });

  it('refuses serials this CA never issued and text that is not a serial', async () => {
    const unknown = await pkiRejection(revokeCertificate({ dir: caDir, serial: '0A1B2C' }));
    expect(unknown.code).toBe('NOT_FOUND');
    expect(unknown.message).toContain('no certificate with serial A1B2C was issued');
    const malformed = await pkiRejection(revokeCertificate({ dir: caDir, serial: 'not-hex' }));
    expect(malformed.reason).toBe('INVALID_SERIAL');
  });
});

describe('missing or damaged CA directories', () => {
  it('names the directory and the init command when the CA is missing', async () => {
    const empty = join(temp.path, 'nothing-here');
    // Each rejection gets its handler at once: awaiting them one by one left the later ones unhandled for a while.
    const rejections = [
      loadCertificateAuthority(empty),
      issueParticipantBundle({ dir: empty, name: 'x' }),
      revokeCertificate({ dir: empty, serial: 'AB' }),
      writeCrl({ dir: empty }),
    ].map(pkiRejection);
    for (const rejection of rejections) {
      const error = await rejection;
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('CA_NOT_INITIALISED');
      expect(error.message).toContain(`CA not initialised in ${empty}`);
      expect(error.message).toContain(`run \`fedgate certs init --dir ${empty}\``);
    }
  });

  it('names the missing key file', async () => {
    const dir = join(temp.path, 'keyless');
    await initCertificateAuthority({ dir, commonName: 'Keyless CA', validDays: 2 });
    await rm(caDirectoryPaths(dir).privateKey);
    const error = await pkiRejection(loadCertificateAuthority(dir));
    expect(error.message).toContain(`${caDirectoryPaths(dir).privateKey} is missing`);
  });

  it('refuses a CA key readable by others, with the chmod that fixes it', async () => {
    const dir = join(temp.path, 'leaky');
    await initCertificateAuthority({ dir, commonName: 'Leaky CA', validDays: 2 });
    const keyPath = caDirectoryPaths(dir).privateKey;
    await chmod(keyPath, 0o644);
    const error = await pkiRejection(loadCertificateAuthority(dir));
    expect(error.reason).toBe('KEY_FILE_TOO_OPEN');
    expect(error.message).toContain(`chmod 600 ${keyPath}`);
  });

  it('reports a corrupt revocation list instead of silently starting over', async () => {
    const dir = join(temp.path, 'corrupt');
    await initCertificateAuthority({ dir, commonName: 'Corrupt CA', validDays: 2 });
    const bundle = await issueParticipantBundle({ dir, name: 'p' });
    await writeFile(caDirectoryPaths(dir).revocations, '{"formatVersion": 1, "crlNumber": "x"');
    const error = await pkiRejection(revokeCertificate({ dir, serial: bundle.certificate.serial }));
    expect(error.reason).toBe('REVOCATION_LIST_CORRUPT');
    expect(error.message).toContain(caDirectoryPaths(dir).revocations);
  });
});
