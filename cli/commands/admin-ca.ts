/**
 * The coordinator's side of the federation CA when coordinator.yaml names tls.ca_dir: the
 * RevocationAuthority behind Admin.RevokeParticipant (over the `fedgate certs` directory layout,
 * certs/ca-directory.ts), and the serials of the directory's current CRL, merged into the revocation
 * set at start so a revocation made offline (`fedgate certs revoke-offline`) is honoured too.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  caDirectoryPaths,
  describeCertificate,
  normalizeSerial,
  readRevocationList,
  revokeCertificate,
  verifyCertificateRevocationList,
  type CertificateSummary,
} from '../../certs/index.js';
import type { CaRevocation, IssuedCertificateInfo, RevocationAuthority } from '../../coordinator/index.js';
import type { CoordinatorConfig, CoordinatorFileOptions } from '../config/coordinator-config.js';
import { ConfigError } from '../config/config-error.js';

/** A RevocationAuthority over the CA directory `dir` (it must hold the CA key: revocations are signed). */
export function caDirectoryAuthority(dir: string): RevocationAuthority {
  const paths = caDirectoryPaths(dir);
  const info = (summary: CertificateSummary): IssuedCertificateInfo => ({
    serial: summary.serial,
    commonName: summary.commonName,
    role: summary.role,
    notAfter: summary.notAfter,
  });
  const describe = async (serial: string): Promise<IssuedCertificateInfo | undefined> => {
    const path = join(paths.issued, `${serial}.pem`);
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return info(describeCertificate(pem, path));
  };
  return {
    description: `CA directory ${paths.directory}`,
    certificate: (serial) => describe(normalizeSerial(serial)),
    async participantCertificates(siteId, now) {
      let names: string[];
      try {
        names = await readdir(paths.issued);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      const found: IssuedCertificateInfo[] = [];
      for (const name of names.filter((entry) => entry.endsWith('.pem'))) {
        const certificate = await describe(name.slice(0, -'.pem'.length));
        if (certificate?.role === 'participant' && certificate.commonName === siteId && certificate.notAfter > now) found.push(certificate);
      }
      return found;
    },
    async revoke(serials, now) {
      const revoked: CaRevocation[] = [];
      let crlNumber = 0n;
      // One CRL per serial: revokeCertificate holds the directory lock for each; the last CRL lists all.
      for (const serial of serials) {
        const result = await revokeCertificate({ dir: paths.directory, serial, now });
        revoked.push({ ...result.record, alreadyRevoked: result.alreadyRevoked });
        crlNumber = result.crlNumber;
      }
      return { revoked, crlNumber };
    },
  };
}

/** Serials revoked by the CA directory: its verified crl.pem plus revocations.json (a CRL may lag a crash). */
export async function caDirectoryRevokedSerials(dir: string, caPem: string, source: string): Promise<string[]> {
  const paths = caDirectoryPaths(dir);
  const serials = new Set((await readRevocationList(paths.revocations)).revoked.map((record) => record.serial));
  let crlPem: string | undefined;
  try {
    crlPem = await readFile(paths.crl, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (crlPem !== undefined) {
    try {
      for (const serial of verifyCertificateRevocationList(crlPem, caPem).revokedSerials) serials.add(serial);
    } catch (error) {
      throw new ConfigError(`${source}: tls.ca_dir (${paths.directory}): crl.pem: ${(error as Error).message}`, { cause: error });
    }
  }
  return [...serials];
}

/** The `admin` options of startCoordinator for a coordinator.yaml, and the extra serials its CA directory revokes. */
export async function coordinatorAdminOptions(
  config: { readonly admin: CoordinatorFileOptions['admin']; readonly tls: CoordinatorConfig['tls']; readonly source: string },
  caPem: string,
): Promise<{ admin: { enabled: boolean; revocationAuthority?: RevocationAuthority }; revokedSerials: string[] }> {
  const caDir = config.tls.caDir;
  const enabled = config.admin.enabled;
  if (caDir === undefined) return { admin: { enabled }, revokedSerials: [] };
  const caCertificate = await readFile(caDirectoryPaths(caDir).certificate, 'utf8').catch((error: unknown) => {
    throw new ConfigError(`${config.source}: tls.ca_dir names ${caDir}, which holds no ca.pem: point it at the directory of \`fedgate certs init\``, { cause: error });
  });
  if (!sameCertificate(caCertificate, caPem)) {
    throw new ConfigError(`${config.source}: tls.ca_dir (${caDir}) holds a different CA than tls.ca: both must be the federation CA`);
  }
  return { admin: { enabled, revocationAuthority: caDirectoryAuthority(caDir) }, revokedSerials: await caDirectoryRevokedSerials(caDir, caPem, config.source) };
}

function sameCertificate(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).raw.equals(new X509Certificate(b).raw);
  } catch {
    return false;
  }
}
