/**
 * Small typed helpers over forge.asn1 for the structures node-forge does not model (X.509 CRLs):
 * builders that emit DER, and readers that check each node's tag before use so a malformed input fails
 * with a message naming the field instead of a TypeError deep inside.
 *
 * forge represents octets as "binary strings" (one char per byte); Buffers convert with 'binary'.
 */
import forge from 'node-forge';
import { PkiError } from './errors.js';

type Asn1 = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;
/** Universal tag numbers (X.680 section 8.4). */
export const ASN1_TYPE = Type;

/** X.509 time encoding cut-over, RFC 5280 section 5.1.2.4 / 4.1.2.5: UTCTime up to 2049. */
const GENERALIZED_TIME_FROM_YEAR = 2050;

export const der = {
  sequence: (children: Asn1[]): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, children),
  oid: (dotted: string): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(dotted).getBytes()),
  null: (): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.NULL, false, ''),
  boolean: (value: boolean): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.BOOLEAN, false, value ? '\xff' : '\x00'),
  /** INTEGER from already-minimal two's-complement content octets (hex). */
  integerFromHex: (contentHex: string): Asn1 =>
    forge.asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.util.hexToBytes(contentHex)),
  /** Non-negative INTEGER from a bigint, minimal encoding (X.690 section 8.3.2). */
  unsignedInteger: (value: bigint): Asn1 => der.integerFromHex(unsignedIntegerHex(value)),
  octetString: (bytes: string): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, bytes),
  /** BIT STRING whose content is whole octets (no unused bits), as signatures are. */
  bitString: (bytes: string): Asn1 => forge.asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\x00${bytes}`),
  time: (date: Date): Asn1 =>
    date.getUTCFullYear() >= GENERALIZED_TIME_FROM_YEAR
      ? forge.asn1.create(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, forge.asn1.dateToGeneralizedTime(date))
      : forge.asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, forge.asn1.dateToUtcTime(date)),
  /** [tagNumber] EXPLICIT wrapper. */
  explicit: (tagNumber: number, inner: Asn1): Asn1 => forge.asn1.create(Class.CONTEXT_SPECIFIC, tagNumber, true, [inner]),
  /** [tagNumber] IMPLICIT primitive with the given content octets. */
  implicitPrimitive: (tagNumber: number, bytes: string): Asn1 => forge.asn1.create(Class.CONTEXT_SPECIFIC, tagNumber, false, bytes),
  encode: (node: Asn1): Buffer => Buffer.from(forge.asn1.toDer(node).getBytes(), 'binary'),
};

export function unsignedIntegerHex(value: bigint): string {
  if (value < 0n) throw new RangeError(`expected a non-negative integer; got ${value}`);
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  return Number.parseInt(hex.slice(0, 2), 16) >= 0x80 ? `00${hex}` : hex;
}

/** Strict DER parse: all bytes consumed, BIT STRING contents left opaque (signatures are not ASN.1). */
export function parseDer(bytes: Buffer, what: string): Asn1 {
  const fromDer = forge.asn1.fromDer as unknown as (
    input: string,
    options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean },
  ) => Asn1;
  try {
    return fromDer(bytes.toString('binary'), { strict: true, parseAllBytes: true, decodeBitStrings: false });
  } catch (error) {
    throw malformed(`${what} is not valid DER`, error);
  }
}

export function malformed(message: string, cause?: unknown): PkiError {
  return new PkiError('INVALID_ARGUMENT', 'CRL_MALFORMED', message, cause === undefined ? {} : { cause });
}

function isUniversal(node: Asn1 | undefined, type: forge.asn1.Type): boolean {
  return node !== undefined && node.tagClass === Class.UNIVERSAL && node.type === type;
}

export const read = {
  isUniversal,
  isTime(node: Asn1 | undefined): boolean {
    return isUniversal(node, Type.UTCTIME) || isUniversal(node, Type.GENERALIZEDTIME);
  },
  children(node: Asn1 | undefined, what: string): Asn1[] {
    if (node === undefined || !isUniversal(node, Type.SEQUENCE) || !Array.isArray(node.value)) {
      throw malformed(`${what} must be a SEQUENCE`);
    }
    return node.value;
  },
  primitive(node: Asn1 | undefined, type: forge.asn1.Type, what: string): string {
    if (node === undefined || !isUniversal(node, type) || typeof node.value !== 'string') {
      throw malformed(`${what} must be a universal primitive of ASN.1 type ${type}`);
    }
    return node.value;
  },
  oid(node: Asn1 | undefined, what: string): string {
    return forge.asn1.derToOid(read.primitive(node, Type.OID, what));
  },
  integerHex(node: Asn1 | undefined, what: string): string {
    const content = read.primitive(node, Type.INTEGER, what);
    if (content.length === 0) throw malformed(`${what} is an empty INTEGER`);
    return forge.util.bytesToHex(content);
  },
  /** Strict RFC 5280 section 4.1.2.5 forms: YYMMDDHHMMSSZ (UTCTime) and YYYYMMDDHHMMSSZ (GeneralizedTime). */
  time(node: Asn1 | undefined, what: string): Date {
    const utc = isUniversal(node, Type.UTCTIME);
    const generalized = isUniversal(node, Type.GENERALIZEDTIME);
    if (!utc && !generalized) throw malformed(`${what} must be a UTCTime or GeneralizedTime`);
    const text = String(node?.value ?? '');
    const match = (utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(text);
    if (match === null) throw malformed(`${what} must be written as ${utc ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}; got ${JSON.stringify(text)}`);
    const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
    // RFC 5280 section 4.1.2.5.1: two-digit years >= 50 are 19YY, below 50 are 20YY.
    const fullYear = utc ? (year >= 50 ? 1900 + year : 2000 + year) : year;
    const date = new Date(Date.UTC(fullYear, month - 1, day, hour, minute, second));
    if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
      throw malformed(`${what} is not a calendar time: ${JSON.stringify(text)}`);
    }
    return date;
  },
  /** Content octets of a BIT STRING with no unused bits. */
  bitStringOctets(node: Asn1 | undefined, what: string): Buffer {
    const content = read.primitive(node, Type.BITSTRING, what);
    if (content.charCodeAt(0) !== 0) throw malformed(`${what} must contain whole octets (unused-bits byte 0)`);
    return Buffer.from(content.slice(1), 'binary');
  },
  isContext(node: Asn1 | undefined, tagNumber: number): boolean {
    return node !== undefined && node.tagClass === Class.CONTEXT_SPECIFIC && node.type === tagNumber;
  },
};
