/**
 * Boundary checks for everything a caller hands to certs/: names, roles, host names, validity windows.
 * Messages name the field, the bad value and what was expected.
 */
import { isIP } from 'node:net';
import { CERTIFICATE_ROLES, isCertificateRole, type CertificateRole } from '../crypto/certificate-role.js';
import { ENTITY_NAME_RULE, isEntityName } from '../crypto/entity-name.js';
import { PkiError } from './errors.js';

/** The CA's CN is only displayed, so printable ASCII is enough. */
const DISPLAY_NAME = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_VALID_DAYS = 36_500;

/**
 * Site, operator and coordinator names become the certificate CN, the identity every round signature
 * is bound to, and file names in bundles: the rule of crypto/entity-name.ts, which the mTLS edge of both
 * sides enforces too.
 */
export function validateEntityName(name: string, field: string): string {
  if (!isEntityName(name)) {
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_NAME', `${field} must be ${ENTITY_NAME_RULE}; got ${JSON.stringify(name)}`);
  }
  return name;
}

export function validateDisplayName(name: string, field: string): string {
  if (!DISPLAY_NAME.test(name)) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_NAME',
      `${field} must be 1-64 printable ASCII characters without leading or trailing spaces; got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** A role named by a caller (API option, command line); the list is crypto/certificate-role.ts's. */
export function validateRole(role: string, field = 'role'): CertificateRole {
  if (!isCertificateRole(role)) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_ROLE',
      `${field} must be one of ${CERTIFICATE_ROLES.join(', ')}; got ${JSON.stringify(role)}`,
    );
  }
  return role;
}

export type SubjectAltName = { readonly kind: 'dns'; readonly value: string } | { readonly kind: 'ip'; readonly value: string };

/** Classifies each host as an IP address (IPv4/IPv6) or an RFC 1123 DNS name; rejects anything else. */
export function parseHosts(hosts: readonly string[], field = 'hosts'): SubjectAltName[] {
  return hosts.map((host, index) => {
    if (isIP(host) !== 0) return { kind: 'ip', value: host };
    const labels = host.split('.');
    if (host.length <= 253 && labels.every((label) => DNS_LABEL.test(label))) {
      return { kind: 'dns', value: host.toLowerCase() };
    }
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_HOST',
      `${field}[${index}] must be a DNS name (RFC 1123) or an IPv4/IPv6 address; got ${JSON.stringify(host)}`,
    );
  });
}

export interface ValidityOptions {
  readonly validDays?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface ValidityWindow {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Backdating notBefore by a few minutes keeps a freshly issued certificate usable on a peer whose clock
 * runs slightly behind (a common cause of "certificate is not yet valid" right after issuing).
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export function validateValidDays(validDays: number, field = 'validDays'): number {
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > MAX_VALID_DAYS) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_VALIDITY',
      `${field} must be an integer number of days in [1, ${MAX_VALID_DAYS}]; got ${String(validDays)}`,
    );
  }
  return validDays;
}

/** Resolves explicit notBefore/notAfter or `validDays` from `now` into a checked window. */
export function resolveValidity(options: ValidityOptions, defaultValidDays: number, now: Date): ValidityWindow {
  const notBefore = options.notBefore ?? new Date(now.getTime() - CLOCK_SKEW_ALLOWANCE_MS);
  const validDays = validateValidDays(options.validDays ?? defaultValidDays);
  const notAfter = options.notAfter ?? new Date(now.getTime() + validDays * DAY_MS);
  for (const [field, date] of [['notBefore', notBefore], ['notAfter', notAfter]] as const) {
    if (Number.isNaN(date.getTime())) {
      throw new PkiError('INVALID_ARGUMENT', 'INVALID_VALIDITY', `${field} must be a valid Date; got an invalid Date`);
    }
  }
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_VALIDITY',
      `notAfter (${notAfter.toISOString()}) must be later than notBefore (${notBefore.toISOString()})`,
    );
  }
  return { notBefore: truncateToSeconds(notBefore), notAfter: truncateToSeconds(notAfter) };
}

/** X.509 times have one-second resolution (RFC 5280 section 4.1.2.5); keep Dates comparable with parsed ones. */
export function truncateToSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
