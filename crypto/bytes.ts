/**
 * Byte-string helpers shared by every primitive. Anything that becomes input to a hash, a KDF or a
 * signature is built with `encodeFields`, so that field boundaries are unambiguous ("ab","c" and
 * "a","bc" encode differently) - the canonical-encoding rule of DESIGN.md, "A round".
 */
import { timingSafeEqual } from 'node:crypto';
import { describeValue, invalidArgument } from './errors.js';

const textEncoder = new TextEncoder();
// With the u flag a surrogate pair is one code point, so this matches lone surrogates only.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Throws INVALID_ARGUMENT unless `value` is a Uint8Array (of exactly `length` bytes when given). */
export function assertBytes(value: unknown, name: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    const expected = length === undefined ? 'a Uint8Array' : `a Uint8Array of ${length} bytes`;
    throw invalidArgument('INVALID_BYTES', `${name} must be ${expected}, got ${describeValue(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw invalidArgument('INVALID_LENGTH', `${name} must be ${length} bytes long, got ${value.length} bytes`);
  }
}

/** Throws INVALID_ARGUMENT unless `value` is an integer in [min, max]. */
export function assertInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument('INVALID_INTEGER', `${name} must be an integer in [${min}, ${max}], got ${describeValue(value)}`);
  }
}

/** The concatenation of `parts` in one freshly allocated array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const [index, part] of parts.entries()) {
    assertBytes(part, `concatBytes part ${index}`);
    total += part.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Length-prefixed encoding: for each field, its length as u32 big-endian, then its bytes. */
export function encodeFields(fields: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(fields)) {
    throw invalidArgument('INVALID_FIELDS', `fields must be an array of Uint8Array, got ${describeValue(fields)}`);
  }
  let total = 0;
  for (const [index, field] of fields.entries()) {
    assertBytes(field, `fields[${index}]`);
    total += 4 + field.length;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const field of fields) {
    view.setUint32(offset, field.length, false);
    out.set(field, offset + 4);
    offset += 4 + field.length;
  }
  return out;
}

/** UTF-8 encoding of `text`; rejects lone surrogates, which have no UTF-8 form and would be replaced silently. */
export function utf8(text: string): Uint8Array {
  if (typeof text !== 'string') {
    throw invalidArgument('INVALID_STRING', `text must be a string, got ${describeValue(text)}`);
  }
  if (LONE_SURROGATE.test(text)) {
    throw invalidArgument('INVALID_STRING', `text must be well-formed UTF-16 (no lone surrogates), got ${describeValue(text)}`);
  }
  return textEncoder.encode(text);
}

/** `n` as 4 bytes big-endian. */
export function u32be(n: number): Uint8Array {
  assertInteger(n, 'n', 0, 0xffff_ffff);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** `n` as 8 bytes big-endian; numbers must be safe integers, bigints below 2^64. */
export function u64be(n: number | bigint): Uint8Array {
  let value: bigint;
  if (typeof n === 'number') {
    assertInteger(n, 'n', 0, Number.MAX_SAFE_INTEGER);
    value = BigInt(n);
  } else if (typeof n === 'bigint' && n >= 0n && n < 1n << 64n) {
    value = n;
  } else {
    throw invalidArgument('INVALID_INTEGER', `n must be a safe integer or a bigint in [0, 2^64), got ${describeValue(n)}`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, false);
  return out;
}

/** Equality in time independent of the content when the lengths are equal (lengths are not secret). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, 'a');
  assertBytes(b, 'b');
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Lexicographic order of byte strings (a proper prefix sorts first), for Array.prototype.sort. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  assertBytes(a, 'a');
  assertBytes(b, 'b');
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    const difference = (a[i] as number) - (b[i] as number);
    if (difference !== 0) return difference < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Overwrites secrets with zeros once they are no longer needed (DESIGN.md, security model). */
export function zeroize(...buffers: (Uint8Array | null | undefined)[]): void {
  for (const [index, buffer] of buffers.entries()) {
    if (buffer === null || buffer === undefined) continue;
    assertBytes(buffer, `zeroize argument ${index}`);
    buffer.fill(0);
  }
}

/** Lower-case hexadecimal. */
export function toHex(bytes: Uint8Array): string {
  assertBytes(bytes, 'bytes');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Parses hexadecimal (either case, even length, no prefix or separators). */
export function fromHex(text: string): Uint8Array {
  if (typeof text !== 'string' || !HEX.test(text)) {
    throw invalidArgument(
      'INVALID_HEX',
      `hex must be a string of an even number of hexadecimal digits, got ${describeValue(text)}`,
    );
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}
