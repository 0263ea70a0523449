/**
 * Throwaway PKI for tests: a fresh CA per call, certificates issued in memory, temp directories that
 * clean up after themselves. Nothing here is written to the repository.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  createCertificateRevocationList,
  issueCertificate,
  type CertificateAuthority,
  type IssueCertificateOptions,
  type IssuedCertificate,
} from '../../certs/index.js';
import type { SystemDependency } from './system-deps.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface TestPki {
  readonly ca: CertificateAuthority;
  /** Coordinator certificate valid for localhost and 127.0.0.1. */
  readonly coordinator: IssuedCertificate;
  readonly participant: (name?: string) => Promise<IssuedCertificate>;
  readonly operator: (name?: string) => Promise<IssuedCertificate>;
  /** A participant certificate whose validity ended yesterday. */
  readonly expiredParticipant: (name?: string) => Promise<IssuedCertificate>;
  readonly issue: (options: IssueCertificateOptions) => Promise<IssuedCertificate>;
  /** A CRL of this CA revoking `serials` (revocation time: now). */
  readonly crl: (serials: readonly string[], crlNumber?: bigint) => string;
}

/** A fresh CA (or `authority`, e.g. one crafted as older fedgate versions made it) with its coordinator certificate. */
export async function createTestPki(commonName = 'fedgate test CA', authority?: CertificateAuthority): Promise<TestPki> {
  const ca = authority ?? (await createCertificateAuthority({ commonName, validDays: 30 }));
  const issue = (options: IssueCertificateOptions): Promise<IssuedCertificate> => issueCertificate(ca, options);
  const coordinator = await issue({ commonName: 'coordinator', role: 'coordinator', hosts: ['localhost', '127.0.0.1'] });
  return {
    ca,
    coordinator,
    issue,
    participant: (name = 'site-a') => issue({ commonName: name, role: 'participant' }),
    operator: (name = 'operator-a') => issue({ commonName: name, role: 'operator' }),
    expiredParticipant: (name = 'site-expired') => {
      const now = Date.now();
      return issue({ commonName: name, role: 'participant', notBefore: new Date(now - 2 * DAY_MS), notAfter: new Date(now - DAY_MS) });
    },
    crl: (serials, crlNumber = 1n) =>
      createCertificateRevocationList(ca, { revoked: serials.map((serial) => ({ serial, revokedAt: new Date() })), crlNumber }),
  };
}

export interface TempDirectory {
  readonly path: string;
  readonly remove: () => Promise<void>;
}

export async function createTempDirectory(prefix = 'fedgate-test-'): Promise<TempDirectory> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The openssl command line tool, used to check that our certificates and CRLs are standard. */
export const opensslCli: SystemDependency = {
  packages: ['openssl'],
  present: () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0,
};

export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runOpenssl(args: readonly string[], cwd?: string): CommandResult {
  const result = spawnSync('openssl', args, { encoding: 'utf8', ...(cwd === undefined ? {} : { cwd }) });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
