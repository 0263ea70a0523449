/**
 * The on-disk layout of a federation CA, behind the `fedgate certs` commands:
 *
 *   DIR/ca.pem                  CA certificate (public; every bundle carries a copy)
 *   DIR/private/ca.key.pem      CA private key, mode 0600 in a 0700 directory
 *   DIR/revocations.json        revoked serials with dates and the last CRL number
 *   DIR/crl.pem                 the current signed CRL
 *   DIR/issued/SERIAL.pem       every certificate issued (public), so revocations can be checked
 *   DIR/bundles/ROLE/NAME/      what to copy to a site: ca.pem, NAME.pem, NAME.key.pem (0600), crl.pem
 *
 * Every write is atomic (platform/atomic-file.ts). Errors name the file and the command that fixes it.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  PRIVATE_DIRECTORY_MODE,
  PRIVATE_FILE_MODE,
  PUBLIC_FILE_MODE,
  ensureDirectory,
  exists,
  isErrnoException,
  writeFileAtomic,
} from '../platform/index.js';
import { certificateAuthorityFromPem, createCertificateAuthority, type CertificateAuthority } from './authority.js';
import { createCertificateRevocationList } from './crl.js';
import { withDirectoryLock } from './directory-lock.js';
import { PkiError } from './errors.js';
import { describeCertificate, issueCertificate, type IssuedCertificate } from './issue.js';
import { readRevocationList, writeRevocationList, type RevocationRecord } from './revocation-list.js';
import { normalizeSerial } from './serial.js';
import type { CertificateRole } from '../crypto/certificate-role.js';
import { validateEntityName } from './validation.js';

export interface CaDirectoryPaths {
  readonly directory: string;
  readonly certificate: string;
  readonly privateKey: string;
  readonly revocations: string;
  readonly crl: string;
  readonly issued: string;
  readonly bundles: string;
}

export function caDirectoryPaths(directory: string): CaDirectoryPaths {
  const root = resolve(directory);
  return {
    directory: root,
    certificate: join(root, 'ca.pem'),
    privateKey: join(root, 'private', 'ca.key.pem'),
    revocations: join(root, 'revocations.json'),
    crl: join(root, 'crl.pem'),
    issued: join(root, 'issued'),
    bundles: join(root, 'bundles'),
  };
}

export interface InitCertificateAuthorityOptions {
  readonly dir: string;
  readonly commonName: string;
  /** @default 3650 */
  readonly validDays?: number;
  readonly now?: Date;
}

/** @default 10 years for the CA: the federation's root outlives many rounds of leaf renewal. */
export const DEFAULT_CA_VALID_DAYS = 3650;

/** `fedgate certs init`: a new CA with an empty CRL. Refuses to overwrite an existing CA. */
export async function initCertificateAuthority(options: InitCertificateAuthorityOptions): Promise<{ authority: CertificateAuthority; paths: CaDirectoryPaths }> {
  const paths = caDirectoryPaths(options.dir);
  await ensureDirectory(paths.directory, PRIVATE_DIRECTORY_MODE);
  return withDirectoryLock(paths.directory, async () => {
    for (const existing of [paths.certificate, paths.privateKey]) {
      if (await exists(existing)) {
        throw new PkiError(
          'ALREADY_EXISTS',
          'CA_ALREADY_INITIALISED',
          `CA already initialised in ${paths.directory} (${existing} exists): refusing to overwrite it; choose another --dir`,
          { details: { path: existing } },
        );
      }
    }
    const authority = await createCertificateAuthority({
      commonName: options.commonName,
      validDays: options.validDays ?? DEFAULT_CA_VALID_DAYS,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    await ensureDirectory(join(paths.directory, 'private'), PRIVATE_DIRECTORY_MODE);
    await ensureDirectory(paths.issued, PRIVATE_DIRECTORY_MODE);
    // Key first: a crash after it leaves "key without certificate", which init reports, never the reverse.
    await writeFileAtomic(paths.privateKey, authority.privateKeyPem, { mode: PRIVATE_FILE_MODE });
    await writeFileAtomic(paths.certificate, authority.certificatePem, { mode: PUBLIC_FILE_MODE });
    await signCrl(paths, authority, options.now);
    return { authority, paths };
  });
}

/** Loads the CA of `dir`, checking the key file's permissions and that key and certificate belong together. */
export async function loadCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const paths = caDirectoryPaths(dir);
  const certificatePem = await readCaFile(paths, paths.certificate);
  const privateKeyPem = await readCaFile(paths, paths.privateKey);
  const { mode } = await stat(paths.privateKey);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new PkiError(
      'PERMISSION_DENIED',
      'KEY_FILE_TOO_OPEN',
      `CA private key ${paths.privateKey} is accessible by group or others (mode ${(mode & 0o777).toString(8)}): run \`chmod 600 ${paths.privateKey}\``,
      { details: { path: paths.privateKey } },
    );
  }
  return certificateAuthorityFromPem(certificatePem, privateKeyPem, `CA in ${paths.directory}`);
}

export interface IssueBundleOptions {
  readonly dir: string;
  readonly role: CertificateRole;
  /** Site id, operator name or coordinator name (certificate CN and file name). */
  readonly name: string;
  /** Coordinator only: DNS names / IPs participants dial. On renewal, defaults to the previous certificate's. */
  readonly hosts?: readonly string[];
  readonly validDays?: number;
  /** @default DIR/bundles/ROLE/NAME */
  readonly outDir?: string;
  /** Replace an existing bundle with a fresh key and serial (renewal). @default false */
  readonly renew?: boolean;
  readonly now?: Date;
}

export interface IssuedBundle {
  readonly directory: string;
  readonly caCertificatePath: string;
  readonly certificatePath: string;
  readonly privateKeyPath: string;
  readonly crlPath: string;
  readonly certificate: Omit<IssuedCertificate, 'privateKeyPem'>;
}

/** `fedgate certs issue ROLE NAME`: a bundle folder that is the one thing to copy to a site. */
export async function issueBundle(options: IssueBundleOptions): Promise<IssuedBundle> {
  const name = validateEntityName(options.name, 'name');
  const paths = caDirectoryPaths(options.dir);
  const authority = await loadCertificateAuthority(paths.directory);
  const bundleDirectory = resolve(options.outDir ?? join(paths.bundles, options.role, name));
  const certificatePath = join(bundleDirectory, `${name}.pem`);
  let hosts = options.hosts;
  if (await exists(certificatePath)) {
    if (options.renew !== true) {
      throw new PkiError(
        'ALREADY_EXISTS',
        'BUNDLE_EXISTS',
        `a bundle for ${options.role} ${name} already exists in ${bundleDirectory}: renew it to issue a fresh key and serial (the old certificate stays valid until it expires or is revoked)`,
        { details: { path: certificatePath } },
      );
    }
    hosts ??= describeCertificate(await readFile(certificatePath, 'utf8'), certificatePath).hosts;
  }
  const issued = await issueCertificate(authority, {
    commonName: name,
    role: options.role,
    ...(hosts === undefined ? {} : { hosts }),
    ...(options.validDays === undefined ? {} : { validDays: options.validDays }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  await ensureDirectory(paths.issued, PRIVATE_DIRECTORY_MODE);
  await writeFileAtomic(join(paths.issued, `${issued.serial}.pem`), issued.certificatePem, { mode: PUBLIC_FILE_MODE });

  await ensureDirectory(bundleDirectory, PRIVATE_DIRECTORY_MODE);
  const { privateKeyPem, ...publicPart } = issued;
  const bundle: IssuedBundle = {
    directory: bundleDirectory,
    caCertificatePath: join(bundleDirectory, 'ca.pem'),
    certificatePath,
    privateKeyPath: join(bundleDirectory, `${name}.key.pem`),
    crlPath: join(bundleDirectory, 'crl.pem'),
    certificate: publicPart,
  };
  // Each file is replaced atomically; a crash between key and certificate during a renewal leaves a
  // mismatched pair in this staging folder (never at a site), fixed by renewing again.
  await writeFileAtomic(bundle.privateKeyPath, privateKeyPem, { mode: PRIVATE_FILE_MODE });
  await writeFileAtomic(bundle.certificatePath, issued.certificatePem, { mode: PUBLIC_FILE_MODE });
  await writeFileAtomic(bundle.caCertificatePath, authority.certificatePem, { mode: PUBLIC_FILE_MODE });
  await writeFileAtomic(bundle.crlPath, await currentCrl(paths, authority), { mode: PUBLIC_FILE_MODE });
  return bundle;
}

export type RoleBundleOptions = Omit<IssueBundleOptions, 'role'>;

export const issueParticipantBundle = (options: RoleBundleOptions): Promise<IssuedBundle> => issueBundle({ ...options, role: 'participant' });
export const issueOperatorBundle = (options: RoleBundleOptions): Promise<IssuedBundle> => issueBundle({ ...options, role: 'operator' });
/** `issue coordinator --host H`; the name defaults to "coordinator". */
export const issueCoordinatorBundle = (options: Omit<RoleBundleOptions, 'name'> & { readonly name?: string }): Promise<IssuedBundle> =>
  issueBundle({ ...options, name: options.name ?? 'coordinator', role: 'coordinator' });

export interface RevokeOptions {
  readonly dir: string;
  readonly serial: string;
  readonly now?: Date;
}

export interface RevocationResult {
  readonly record: RevocationRecord;
  /** True when the serial was already on the list (the CRL is re-signed anyway). */
  readonly alreadyRevoked: boolean;
  readonly crlPath: string;
  readonly crlNumber: bigint;
}

/** `fedgate certs revoke SERIAL`: records the revocation, then signs and writes a fresh crl.pem. */
export async function revokeCertificate(options: RevokeOptions): Promise<RevocationResult> {
  const serial = normalizeSerial(options.serial);
  const paths = caDirectoryPaths(options.dir);
  const authority = await loadCertificateAuthority(paths.directory);
  return withDirectoryLock(paths.directory, async () => {
    const issuedPath = join(paths.issued, `${serial}.pem`);
    if (!(await exists(issuedPath))) {
      throw new PkiError(
        'NOT_FOUND',
        'UNKNOWN_SERIAL',
        `no certificate with serial ${serial} was issued by the CA in ${paths.directory} (see ${paths.issued}/): check the serial (\`openssl x509 -noout -serial -in NAME.pem\`)`,
        { details: { serial } },
      );
    }
    const list = await readRevocationList(paths.revocations);
    const existing = list.revoked.find((record) => record.serial === serial);
    let record = existing;
    if (record === undefined) {
      const summary = describeCertificate(await readFile(issuedPath, 'utf8'), issuedPath);
      record = { serial, revokedAt: options.now ?? new Date(), commonName: summary.commonName, role: summary.role };
      // The list is written before the CRL: after a crash in between, re-running revoke re-signs the CRL.
      await writeRevocationList(paths.revocations, { ...list, revoked: [...list.revoked, record] });
    }
    const crlNumber = await signCrl(paths, authority, options.now);
    return { record, alreadyRevoked: existing !== undefined, crlPath: paths.crl, crlNumber };
  });
}

/** Re-signs crl.pem from revocations.json (due before the current CRL's nextUpdate). */
export async function writeCrl(options: { readonly dir: string; readonly now?: Date; readonly validDays?: number }): Promise<{ crlPath: string; crlNumber: bigint }> {
  const paths = caDirectoryPaths(options.dir);
  const authority = await loadCertificateAuthority(paths.directory);
  return withDirectoryLock(paths.directory, async () => ({ crlPath: paths.crl, crlNumber: await signCrl(paths, authority, options.now, options.validDays) }));
}

/** Increments the CRL number in revocations.json, then writes the CRL carrying it. Caller holds the lock. */
async function signCrl(paths: CaDirectoryPaths, authority: CertificateAuthority, now?: Date, validDays?: number): Promise<bigint> {
  const list = await readRevocationList(paths.revocations);
  const crlNumber = list.crlNumber + 1n;
  await writeRevocationList(paths.revocations, { ...list, crlNumber });
  const crlPem = createCertificateRevocationList(authority, {
    revoked: list.revoked,
    crlNumber,
    ...(now === undefined ? {} : { thisUpdate: now }),
    ...(validDays === undefined ? {} : { validDays }),
  });
  await writeFileAtomic(paths.crl, crlPem, { mode: PUBLIC_FILE_MODE });
  return crlNumber;
}

/** The current crl.pem, signing one first if an interrupted init left none. */
async function currentCrl(paths: CaDirectoryPaths, authority: CertificateAuthority): Promise<string> {
  if (!(await exists(paths.crl))) {
    await withDirectoryLock(paths.directory, async () => {
      if (!(await exists(paths.crl))) await signCrl(paths, authority);
    });
  }
  return readCaFile(paths, paths.crl);
}

async function readCaFile(paths: CaDirectoryPaths, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isErrnoException(error) && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) {
      throw new PkiError(
        'FAILED_PRECONDITION',
        'CA_NOT_INITIALISED',
        `CA not initialised in ${paths.directory} (${path} is missing): run \`fedgate certs init --dir ${paths.directory}\``,
        { cause: error, details: { path } },
      );
    }
    throw error;
  }
}
