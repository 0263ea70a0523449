/**
 * The role a certificate grants (DESIGN.md, security model): the subject OU, never the name. The one list
 * of roles and the one rule for reading a role from a certificate, used by the service edge, the TLS
 * credentials, the CA tooling, the CLI and the certificate verifier alike, so that no two of them can
 * disagree about who is an operator.
 *
 * The rule is strict: exactly one subject OU, spelt exactly as one of CERTIFICATE_ROLES (case matters).
 * No OU, two OUs (even two equal ones), an unknown or differently cased value, or a role written only
 * in the CN are all refused; certs/ never issues such certificates.
 */
import type { X509Certificate } from 'node:crypto';
import { CryptoError } from './errors.js';

export const CERTIFICATE_ROLES = ['participant', 'coordinator', 'operator'] as const;
export type CertificateRole = (typeof CERTIFICATE_ROLES)[number];

export function isCertificateRole(value: unknown): value is CertificateRole {
  return typeof value === 'string' && (CERTIFICATE_ROLES as readonly string[]).includes(value);
}

/** Why no role could be read: no OU at all, more than one, or one that is not a role. */
export type CertificateRoleProblem = 'MISSING' | 'AMBIGUOUS' | 'UNKNOWN';

/**
 * A certificate without exactly one known role. PERMISSION_DENIED with reason CERTIFICATE_ROLE; `problem`
 * lets a caller that reports roles under its own reasons (the service edge, the TLS credentials, the
 * CA tooling) tell the cases apart without parsing the message.
 */
export class CertificateRoleError extends CryptoError {
  readonly problem: CertificateRoleProblem;
  /** The subject OU values found, as written in the certificate. */
  readonly organizationalUnits: readonly string[];

  constructor(problem: CertificateRoleProblem, organizationalUnits: readonly string[], message: string) {
    super('PERMISSION_DENIED', 'CERTIFICATE_ROLE', message);
    this.name = 'CertificateRoleError';
    this.problem = problem;
    this.organizationalUnits = organizationalUnits;
  }
}

/**
 * A subject's attributes as Node gives them (`PeerCertificate.subject`,
 * `X509Certificate.toLegacyObject().subject`): a string per attribute, an array when it repeats. Typed
 * loosely on purpose: the values come from a peer's certificate and are checked here.
 */
export type SubjectAttributes = object;

/**
 * The role of a certificate subject. `who` names the certificate in the error message
 * ("certificate of site-1 (serial 1A)").
 */
export function roleFromSubject(subject: SubjectAttributes | undefined, who = 'certificate'): CertificateRole {
  return roleFromOrganizationalUnits(attributeValues(subject, 'OU'), who);
}

/** The role of an X.509 certificate, by its subject (unescaped by OpenSSL, no DN parsing of ours). */
export function roleFromCertificate(certificate: X509Certificate, who = 'certificate'): CertificateRole {
  return roleFromSubject(certificate.toLegacyObject().subject as unknown as SubjectAttributes | undefined, who);
}

/**
 * The role named by a subject's OU values, for callers that read the subject with another library
 * (node-forge in certs/).
 */
export function roleFromOrganizationalUnits(organizationalUnits: readonly string[], who = 'certificate'): CertificateRole {
  const role = organizationalUnits[0];
  if (organizationalUnits.length === 1 && isCertificateRole(role)) return role;
  const problem: CertificateRoleProblem = organizationalUnits.length === 0 ? 'MISSING' : organizationalUnits.length > 1 ? 'AMBIGUOUS' : 'UNKNOWN';
  throw new CertificateRoleError(
    problem,
    organizationalUnits,
    `${who} must carry exactly one subject OU among ${CERTIFICATE_ROLES.join(', ')}, got ${JSON.stringify(organizationalUnits)}`,
  );
}

/** Every value of `attribute` in `subject`, in order; none when it is absent. */
export function attributeValues(subject: SubjectAttributes | undefined, attribute: string): string[] {
  const value: unknown = (subject as Readonly<Record<string, unknown>> | undefined)?.[attribute];
  if (value === undefined) return [];
  return (Array.isArray(value) ? (value as unknown[]) : [value]).map((item) => String(item));
}
