/**
 * Reads the PEM files a config names, with errors that name the file, the config key and what to do.
 * The CRL, when given, is verified against the CA before any serial is trusted.
 */
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { verifyCertificateRevocationList } from '../certs/index.js';
import { CertificateRoleError, roleFromCertificate, type CertificateRole } from '../crypto/certificate-role.js';
import { ConfigError } from './config/config-error.js';

export interface TlsFiles {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly revokedSerials: ReadonlySet<string>;
  /** Subject CN of our own certificate. */
  readonly commonName: string;
  /** The role of our own certificate (its one subject OU). */
  readonly role: CertificateRole;
}

export async function readTlsFiles(paths: { ca: string; cert: string; key: string; crl?: string | undefined }, source: string): Promise<TlsFiles> {
  const caPem = await readPem(paths.ca, 'tls.ca', source, 'CERTIFICATE');
  const certPem = await readPem(paths.cert, 'tls.cert', source, 'CERTIFICATE');
  const keyPem = await readPem(paths.key, 'tls.key', source, 'PRIVATE KEY');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new ConfigError(`${source}: tls.cert (${paths.cert}) is not a readable X.509 certificate`, { cause: error });
  }
  if (!certificate.checkIssued(new X509Certificate(caPem))) {
    throw new ConfigError(`${source}: tls.cert (${paths.cert}) was not issued by the CA in tls.ca (${paths.ca}): use the bundle made by \`fedgate certs issue\` for this federation`);
  }
  let revokedSerials: ReadonlySet<string> = new Set();
  if (paths.crl !== undefined) {
    const crlPem = await readPem(paths.crl, 'tls.crl', source, 'X509 CRL');
    try {
      revokedSerials = verifyCertificateRevocationList(crlPem, caPem).revokedSerials;
    } catch (error) {
      throw new ConfigError(`${source}: tls.crl (${paths.crl}): ${(error as Error).message}`, { cause: error });
    }
  }
  let role: CertificateRole;
  try {
    role = roleFromCertificate(certificate, `tls.cert (${paths.cert})`);
  } catch (error) {
    if (!(error instanceof CertificateRoleError)) throw error;
    throw new ConfigError(`${source}: ${error.message}: use a bundle made by \`fedgate certs issue\``, { cause: error });
  }
  const field = (name: string): string => certificate.subject.split('\n').find((line) => line.startsWith(`${name}=`))?.slice(name.length + 1) ?? '';
  return { caPem, certPem, keyPem, revokedSerials, commonName: field('CN'), role };
}

async function readPem(path: string, key: string, source: string, label: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${source}: ${key} names ${path}, which ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`}`, { cause: error });
  }
  if (!text.includes(`-----BEGIN `) || !text.includes(label)) {
    throw new ConfigError(`${source}: ${key} (${path}) is not a PEM file holding a ${label}`);
  }
  return text;
}
