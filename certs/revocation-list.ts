/**
 * The CA's own record of revocations, stored beside the CA as JSON (serials and dates, plus the number
 * of the last CRL signed). crl.pem is derived from it; it is the source of truth when re-signing.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CERTIFICATE_ROLES, type CertificateRole } from '../crypto/certificate-role.js';
import { PUBLIC_FILE_MODE, isErrnoException, writeFileAtomic } from '../platform/index.js';
import { PkiError } from './errors.js';
import { normalizeSerial } from './serial.js';

export const REVOCATION_LIST_FORMAT_VERSION = 1;

export interface RevocationRecord {
  readonly serial: string;
  readonly revokedAt: Date;
  /** Who the certificate belonged to, for operators reading the file; not used for matching. */
  readonly commonName: string;
  readonly role: CertificateRole;
}

export interface RevocationList {
  /** Number of the most recent CRL signed from this list (RFC 5280 section 5.2.3), 0 before the first. */
  readonly crlNumber: bigint;
  readonly revoked: readonly RevocationRecord[];
}

const revocationFileSchema = z.strictObject({
  formatVersion: z.literal(REVOCATION_LIST_FORMAT_VERSION),
  crlNumber: z.string().regex(/^(0|[1-9][0-9]*)$/, 'a decimal integer string'),
  revoked: z.array(
    z.strictObject({
      serial: z.string(),
      revokedAt: z.iso.datetime(),
      commonName: z.string(),
      role: z.enum(CERTIFICATE_ROLES),
    }),
  ),
});

export const EMPTY_REVOCATION_LIST: RevocationList = { crlNumber: 0n, revoked: [] };

/** Reads the list; a missing file is an empty list, a corrupt one an error naming the file. */
export async function readRevocationList(path: string): Promise<RevocationList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return EMPTY_REVOCATION_LIST;
    throw error;
  }
  let parsed: z.infer<typeof revocationFileSchema>;
  try {
    parsed = revocationFileSchema.parse(JSON.parse(text));
  } catch (error) {
    throw new PkiError(
      'FAILED_PRECONDITION',
      'REVOCATION_LIST_CORRUPT',
      `revocation list ${path} is not a valid fedgate revocation list (format version ${REVOCATION_LIST_FORMAT_VERSION}): restore it from backup; ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, details: { path } },
    );
  }
  return {
    crlNumber: BigInt(parsed.crlNumber),
    revoked: parsed.revoked.map((record, index) => ({
      serial: normalizeSerial(record.serial, `${path}: revoked[${index}].serial`),
      revokedAt: new Date(record.revokedAt),
      commonName: record.commonName,
      role: record.role,
    })),
  };
}

export async function writeRevocationList(path: string, list: RevocationList): Promise<void> {
  const file: z.infer<typeof revocationFileSchema> = {
    formatVersion: REVOCATION_LIST_FORMAT_VERSION,
    crlNumber: list.crlNumber.toString(),
    revoked: list.revoked.map((record) => ({
      serial: record.serial,
      revokedAt: record.revokedAt.toISOString(),
      commonName: record.commonName,
      role: record.role,
    })),
  };
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: PUBLIC_FILE_MODE });
}
