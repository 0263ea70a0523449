/**
 * Certificate serial numbers. RFC 5280 section 4.1.2.2: a positive INTEGER of at most 20 octets, unique
 * per CA; CA/B Forum practice adds at least 64 bits of randomness so serials are unpredictable. We draw
 * 16 random bytes (top bit cleared so the DER INTEGER stays positive without a pad byte).
 *
 * Canonical text form, used everywhere a serial is compared (revocation sets, CRLs, file names):
 * upper-case hex without leading zeros. OpenSSL and Node print serials with a leading zero nibble or
 * lower case at times, so every serial read from outside goes through `normalizeSerial`.
 */
import { randomBytes } from 'node:crypto';
import { PkiError } from './errors.js';

export const SERIAL_BYTES = 16;
/** RFC 5280 section 4.1.2.2: conforming CAs use serials of at most 20 octets. */
const MAX_SERIAL_BYTES = 20;
const HEX_SERIAL = /^(?:0x)?[0-9a-fA-F]+$/;

/** A fresh random positive serial in canonical form. */
export function randomSerial(): string {
  for (;;) {
    const bytes = randomBytes(SERIAL_BYTES);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    const serial = stripLeadingZeros(bytes.toString('hex').toUpperCase());
    // All-zero draws (probability 2^-127) are not a valid serial; draw again rather than special-case.
    if (serial !== '0') return serial;
  }
}

/**
 * Canonical form of a serial given as hex (any case, optional `0x`, optional colons as printed by
 * `openssl x509 -serial` variants). Throws INVALID_ARGUMENT naming `field` for anything else.
 */
export function normalizeSerial(serial: string, field = 'serial'): string {
  const compact = serial.trim().replaceAll(':', '');
  if (!HEX_SERIAL.test(compact)) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_SERIAL',
      `${field} must be a hexadecimal certificate serial such as 5F3A09C2...; got ${JSON.stringify(serial)}`,
    );
  }
  const canonical = stripLeadingZeros(compact.replace(/^0x/, '').toUpperCase());
  if (canonical === '0') {
    throw new PkiError('INVALID_ARGUMENT', 'INVALID_SERIAL', `${field} must be a positive serial; got ${JSON.stringify(serial)}`);
  }
  if (canonical.length > MAX_SERIAL_BYTES * 2) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_SERIAL',
      `${field} must fit in ${MAX_SERIAL_BYTES} octets (RFC 5280 section 4.1.2.2); got ${canonical.length} hex digits`,
    );
  }
  return canonical;
}

/**
 * The content octets of the DER INTEGER for a canonical serial: minimal length, with a 0x00 pad when
 * the first octet has its top bit set (X.690 section 8.3.2), returned as hex.
 */
export function serialToDerHex(canonicalSerial: string): string {
  const even = canonicalSerial.length % 2 === 1 ? `0${canonicalSerial}` : canonicalSerial;
  const firstOctet = Number.parseInt(even.slice(0, 2), 16);
  return firstOctet >= 0x80 ? `00${even}` : even;
}

/** Canonical serial from the content octets of a DER INTEGER (hex); rejects negative integers. */
export function serialFromDerHex(contentHex: string, field = 'serial'): string {
  const firstOctet = Number.parseInt(contentHex.slice(0, 2), 16);
  if (Number.isNaN(firstOctet) || firstOctet >= 0x80) {
    throw new PkiError(
      'INVALID_ARGUMENT',
      'INVALID_SERIAL',
      `${field} must be a positive INTEGER (RFC 5280 section 4.1.2.2); got content octets ${contentHex.slice(0, 16)}`,
    );
  }
  return normalizeSerial(contentHex, field);
}

function stripLeadingZeros(hex: string): string {
  const stripped = hex.replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}
