/**
 * X.509 v2 certificate revocation lists (RFC 5280 section 5), built with forge.asn1 because node-forge
 * has no CRL support, and signed with the CA key through node:crypto (RSASSA-PKCS1-v1_5 with SHA-256,
 * RFC 4055 sha256WithRSAEncryption). OpenSSL and Node's TLS `crl` option read the result.
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version v2, signature, issuer, thisUpdate, nextUpdate,
 *                              revokedCertificates SEQUENCE OF SEQUENCE { serial, revocationDate } OPTIONAL,
 *                              crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
import { X509Certificate, sign } from 'node:crypto';
import type forge from 'node-forge';
import { parseAuthority, type CertificateAuthority } from './authority.js';
import { der, malformed, parseDer, read } from './der.js';
import { PkiError } from './errors.js';
import { normalizeSerial, serialToDerHex } from './serial.js';
import { truncateToSeconds, validateValidDays } from './validation.js';

export const OID = {
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  crlNumber: '2.5.29.20',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

/** Version field value for v2 (RFC 5280 section 5.1.2.1: INTEGER 1). */
export const CRL_VERSION_2 = 1n;
/** @default 30 days between thisUpdate and nextUpdate; re-sign (`writeCrl`) before then even without new revocations. */
export const DEFAULT_CRL_VALID_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;
const PEM_LABEL = 'X509 CRL';

export interface RevokedCertificateEntry {
  /** Canonical serial (see normalizeSerial). */
  readonly serial: string;
  readonly revokedAt: Date;
}

export interface CreateCrlOptions {
  readonly revoked: readonly RevokedCertificateEntry[];
  /** Monotonically increasing per CA (RFC 5280 section 5.2.3). */
  readonly crlNumber: bigint;
  /** @default new Date() */
  readonly thisUpdate?: Date;
  /** @default thisUpdate + validDays */
  readonly nextUpdate?: Date;
  /** @default DEFAULT_CRL_VALID_DAYS */
  readonly validDays?: number;
}

/** Builds and signs a CRL; returns PEM ("BEGIN X509 CRL"). */
export function createCertificateRevocationList(ca: CertificateAuthority, options: CreateCrlOptions): string {
  const thisUpdate = truncateToSeconds(options.thisUpdate ?? new Date());
  const nextUpdate = truncateToSeconds(
    options.nextUpdate ?? new Date(thisUpdate.getTime() + validateValidDays(options.validDays ?? DEFAULT_CRL_VALID_DAYS) * DAY_MS),
  );
  if (nextUpdate.getTime() <= thisUpdate.getTime()) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_VALIDITY',
      `nextUpdate (${nextUpdate.toISOString()}) must be later than thisUpdate (${thisUpdate.toISOString()})`,
    );
  }
  if (options.crlNumber < 0n || options.crlNumber >= 1n << 159n) {
    // RFC 5280 section 5.2.3: crlNumber is a non-negative integer of at most 20 octets.
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_CRL_NUMBER', `crlNumber must be in [0, 2^159); got ${options.crlNumber}`);
  }
  const authority = parseAuthority(ca);
  const signatureAlgorithm = der.sequence([der.oid(OID.sha256WithRSAEncryption), der.null()]);

  const tbsFields: forge.asn1.Asn1[] = [
    der.unsignedInteger(CRL_VERSION_2),
    signatureAlgorithm,
    subjectNameOf(ca.certificatePem),
    der.time(thisUpdate),
    der.time(nextUpdate),
  ];
  // RFC 5280 section 5.1.2.6: with nothing revoked the list MUST be absent, not empty.
  if (options.revoked.length > 0) {
    tbsFields.push(
      der.sequence(
        options.revoked.map((entry) =>
          der.sequence([der.integerFromHex(serialToDerHex(normalizeSerial(entry.serial))), der.time(truncateToSeconds(entry.revokedAt))]),
        ),
      ),
    );
  }
  // RFC 5280 section 5.2.1 and 5.2.3: conforming issuers include authorityKeyIdentifier and crlNumber.
  tbsFields.push(
    der.explicit(
      0,
      der.sequence([
        extension(OID.authorityKeyIdentifier, der.sequence([der.implicitPrimitive(0, authority.keyIdentifier)])),
        extension(OID.crlNumber, der.unsignedInteger(options.crlNumber)),
      ]),
    ),
  );
  const tbsCertList = der.sequence(tbsFields);
  const signature = sign('sha256', der.encode(tbsCertList), ca.privateKeyPem);
  const certificateList = der.sequence([tbsCertList, signatureAlgorithm, der.bitString(signature.toString('binary'))]);
  return toPem(der.encode(certificateList), PEM_LABEL);
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted in DER), extnValue OCTET STRING } */
function extension(oid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return der.sequence([der.oid(oid), der.octetString(der.encode(value).toString('binary'))]);
}

/**
 * The subject Name of a certificate exactly as encoded in it. RFC 5280 section 5.1.2.3: the CRL issuer
 * must match the CA's subject; copying the encoded Name avoids any re-encoding difference.
 */
export function subjectNameOf(certificatePem: string): forge.asn1.Asn1 {
  const certificateDer = Buffer.from(new X509Certificate(certificatePem).raw);
  const tbsCertificate = read.children(read.children(parseDer(certificateDer, 'CA certificate'), 'Certificate')[0], 'TBSCertificate');
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, ...
  const subjectIndex = read.isContext(tbsCertificate[0], 0) ? 5 : 4;
  const subject = tbsCertificate[subjectIndex];
  if (subject === undefined) throw malformed('CA certificate has no subject Name');
  return subject;
}

export function toPem(bytes: Buffer, label: string): string {
  const base64 = bytes.toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** DER bytes of the first PEM block with `label`; INVALID_ARGUMENT naming `what` otherwise. */
export function fromPem(pem: string, label: string, what: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (match?.[1] === undefined) {
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_PEM', `${what} must be PEM with a "BEGIN ${label}" block`);
  }
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}

export const CRL_PEM_LABEL = PEM_LABEL;
