/**
 * Parsing and verification of a CRL against the federation CA (RFC 5280 section 6.3.3, the steps that
 * apply to a single-CA federation): signature by the CA key, issuer equal to the CA subject, the
 * thisUpdate/nextUpdate window, v2 syntax, and no unrecognised critical extension (section 5.2: a CRL
 * with one MUST NOT be used). The result is the set of revoked serials in canonical form.
 */
import { X509Certificate, verify } from 'node:crypto';
import type forge from 'node-forge';
import { CRL_PEM_LABEL, CRL_VERSION_2, OID, fromPem, subjectNameOf } from './crl.js';
import { ASN1_TYPE, der, malformed, parseDer, read } from './der.js';
import { PkiError } from './errors.js';
import { serialFromDerHex } from './serial.js';
import { CLOCK_SKEW_ALLOWANCE_MS } from './validation.js';

export interface VerifiedCrl {
  /** Canonical serials (upper-case hex, no leading zeros). */
  readonly revokedSerials: ReadonlySet<string>;
  /** Every entry with its revocation date, in CRL order. */
  readonly entries: readonly { readonly serial: string; readonly revokedAt: Date }[];
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** The crlNumber extension, or null when absent. */
  readonly crlNumber: bigint | null;
}

export interface VerifyCrlOptions {
  /** Clock for tests; @default new Date() */
  readonly now?: Date;
  /**
   * Check thisUpdate/nextUpdate against `now`. An auditor reading an old CRL for revocation dates turns
   * this off: the signature and issuer are still checked. @default true
   */
  readonly checkFreshness?: boolean;
}

/** Crl extensions this implementation understands; anything else marked critical rejects the CRL. */
const KNOWN_CRL_EXTENSIONS = new Set<string>([OID.crlNumber, OID.authorityKeyIdentifier]);

/**
 * Parses `crl` (PEM "X509 CRL" or DER) and verifies it was issued by `caCertificatePem`.
 * Throws PkiError: INVALID_ARGUMENT for malformed input, PERMISSION_DENIED for a bad signature or a
 * foreign issuer, FAILED_PRECONDITION when the CRL is outside its validity window.
 */
export function verifyCertificateRevocationList(crl: string | Buffer, caCertificatePem: string, options: VerifyCrlOptions = {}): VerifiedCrl {
  const now = options.now ?? new Date();
  const crlDer = typeof crl === 'string' ? fromPem(crl, CRL_PEM_LABEL, 'CRL') : crl;
  const [tbsCertList, signatureAlgorithm, signatureValue, ...extra] = read.children(parseDer(crlDer, 'CRL'), 'CertificateList');
  if (tbsCertList === undefined || extra.length > 0) throw malformed('CertificateList must hold exactly tbsCertList, signatureAlgorithm and signatureValue');

  const fields = read.children(tbsCertList, 'tbsCertList');
  let index = 0;
  // version is OPTIONAL in the syntax, but v2 is required for the extensions we rely on.
  const version = read.isUniversal(fields[index], ASN1_TYPE.INTEGER) ? BigInt(`0x${read.integerHex(fields[index++], 'version')}`) : 0n;
  if (version !== CRL_VERSION_2) {
    throw new PkiError('INVALID_ARGUMENT', 'CRL_UNSUPPORTED', `CRL version must be v2 (INTEGER 1); got INTEGER ${version}`);
  }
  const innerAlgorithm = algorithmOid(fields[index++], 'tbsCertList.signature');
  const outerAlgorithm = algorithmOid(signatureAlgorithm, 'signatureAlgorithm');
  // RFC 5280 section 5.1.1.2: the two algorithm identifiers MUST be equal.
  if (innerAlgorithm !== outerAlgorithm || outerAlgorithm !== OID.sha256WithRSAEncryption) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'CRL_UNSUPPORTED',
      `CRL signature algorithm must be sha256WithRSAEncryption (${OID.sha256WithRSAEncryption}) in both places; got ${innerAlgorithm} and ${outerAlgorithm}`,
    );
  }

  // Verify before trusting any content. The TBS is re-encoded from the strict DER parse; what is
  // verified is therefore exactly the structure interpreted below.
  const caCertificate = new X509Certificate(caCertificatePem);
  if (!verify('sha256', der.encode(tbsCertList), caCertificate.publicKey, read.bitStringOctets(signatureValue, 'signatureValue'))) {
    throw new PkiError('PERMISSION_DENIED', 'CRL_SIGNATURE_INVALID', `CRL signature does not verify with the key of CA "${caCertificate.subject.replaceAll('\n', ', ')}"`);
  }
  const issuer = fields[index++];
  if (issuer === undefined || !der.encode(issuer).equals(der.encode(subjectNameOf(caCertificatePem)))) {
    throw new PkiError('PERMISSION_DENIED', 'CRL_ISSUER_MISMATCH', `CRL issuer does not match the CA subject "${caCertificate.subject.replaceAll('\n', ', ')}"`);
  }

  const thisUpdate = read.time(fields[index++], 'thisUpdate');
  if (!read.isTime(fields[index])) {
    throw new PkiError('INVALID_ARGUMENT', 'CRL_UNSUPPORTED', 'CRL must carry nextUpdate (RFC 5280 section 5.1.2.5)');
  }
  const nextUpdate = read.time(fields[index++], 'nextUpdate');
  if (options.checkFreshness !== false && thisUpdate.getTime() - CLOCK_SKEW_ALLOWANCE_MS > now.getTime()) {
    throw new PkiError('FAILED_PRECONDITION', 'CRL_NOT_YET_VALID', `CRL thisUpdate ${thisUpdate.toISOString()} is in the future (now ${now.toISOString()}): check the clocks`);
  }
  if (options.checkFreshness !== false && nextUpdate.getTime() <= now.getTime()) {
    throw new PkiError(
      'FAILED_PRECONDITION',
      'CRL_EXPIRED',
      `CRL expired at its nextUpdate ${nextUpdate.toISOString()} (now ${now.toISOString()}): the CA operator must publish a fresh crl.pem`,
    );
  }

  const entries: { serial: string; revokedAt: Date }[] = [];
  const maybeRevoked = fields[index];
  if (maybeRevoked !== undefined && !read.isContext(maybeRevoked, 0)) {
    read.children(maybeRevoked, 'revokedCertificates').forEach((entry, position) => {
      const [serial, revocationDate, entryExtensions] = read.children(entry, `revokedCertificates[${position}]`);
      if (entryExtensions !== undefined) rejectCriticalExtensions(entryExtensions, new Set(), `revokedCertificates[${position}]`);
      entries.push({
        serial: serialFromDerHex(read.integerHex(serial, `revokedCertificates[${position}].userCertificate`), `revokedCertificates[${position}].userCertificate`),
        revokedAt: read.time(revocationDate, `revokedCertificates[${position}].revocationDate`),
      });
    });
    index++;
  }

  let crlNumber: bigint | null = null;
  const extensionsField = fields[index];
  if (extensionsField !== undefined) {
    if (!read.isContext(extensionsField, 0) || !Array.isArray(extensionsField.value) || extensionsField.value.length !== 1) {
      throw malformed('crlExtensions must be [0] EXPLICIT Extensions');
    }
    const extensions = rejectCriticalExtensions(extensionsField.value[0], KNOWN_CRL_EXTENSIONS, 'crlExtensions');
    const crlNumberValue = extensions.get(OID.crlNumber);
    if (crlNumberValue !== undefined) crlNumber = BigInt(`0x${read.integerHex(parseDer(crlNumberValue, 'crlNumber'), 'crlNumber')}`);
    index++;
  }
  if (index !== fields.length) throw malformed(`tbsCertList has ${fields.length - index} unexpected trailing field(s)`);

  return { revokedSerials: new Set(entries.map((entry) => entry.serial)), entries, thisUpdate, nextUpdate, crlNumber };
}

function algorithmOid(node: forge.asn1.Asn1 | undefined, what: string): string {
  return read.oid(read.children(node, what)[0], `${what}.algorithm`);
}

/** Reads an Extensions SEQUENCE into OID -> extnValue octets; throws on a critical extension not in `known`. */
function rejectCriticalExtensions(node: forge.asn1.Asn1 | undefined, known: ReadonlySet<string>, what: string): Map<string, Buffer> {
  const values = new Map<string, Buffer>();
  read.children(node, what).forEach((extensionNode, position) => {
    const parts = read.children(extensionNode, `${what}[${position}]`);
    if (parts.length !== 2 && parts.length !== 3) throw malformed(`${what}[${position}] must be SEQUENCE { extnID, critical?, extnValue }`);
    const oid = read.oid(parts[0], `${what}[${position}].extnID`);
    const critical = parts.length === 3 && read.primitive(parts[1], ASN1_TYPE.BOOLEAN, `${what}[${position}].critical`) !== '\x00';
    if (critical && !known.has(oid)) {
      throw new PkiError('INVALID_ARGUMENT', 'CRL_UNSUPPORTED', `${what}[${position}] is a critical extension ${oid} this verifier does not process (RFC 5280 section 5.2)`);
    }
    values.set(oid, Buffer.from(read.primitive(parts[parts.length - 1], ASN1_TYPE.OCTETSTRING, `${what}[${position}].extnValue`), 'binary'));
  });
  return values;
}
