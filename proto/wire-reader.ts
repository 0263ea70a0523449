/**
 * Field checks for decoding received messages. The generated __Output types say what the loader
 * produces, but a decoder still checks every field it reads: a loader option changed by mistake, a peer
 * on another schema version or a test scripting a lying peer must end in a FedgateError naming the field
 * (`ParticipantMessage.shareKeys.shares[2].receiver must be a non-empty string`), never in a domain
 * object with a hole in it.
 */
import { FedgateError } from './errors.js';

/** Reason tag of every malformed-message error raised while decoding. */
export const MALFORMED_MESSAGE = 'MALFORMED_MESSAGE';

export class WireReader {
  /** `where` prefixes every field name in errors, e.g. 'ParticipantMessage.shareKeys'. */
  constructor(readonly where: string) {}

  /** A reader for a nested message or list entry. */
  at(field: string): WireReader {
    return new WireReader(`${this.where}.${field}`);
  }

  /** Bytes as a Uint8Array view of the received buffer (no copy). */
  bytes(value: unknown, field: string): Uint8Array {
    if (!(value instanceof Uint8Array)) throw this.fail(field, 'bytes');
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  /** A string that must not be empty: site ids, serials, reason tags. */
  text(value: unknown, field: string): string {
    if (typeof value !== 'string' || value.length === 0) throw this.fail(field, 'a non-empty string');
    return value;
  }

  /** Any string, the empty one included (free-text fields). */
  string(value: unknown, field: string): string {
    if (typeof value !== 'string') throw this.fail(field, 'a string');
    return value;
  }

  /** A non-negative integer below 2^53 (uint32 and uint64 fields). */
  count(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.fail(field, 'a non-negative integer below 2^53');
    return value;
  }

  /** Any number (float and double fields; NaN is a number the sender may mean). */
  number(value: unknown, field: string): number {
    if (typeof value !== 'number') throw this.fail(field, 'a number');
    return value;
  }

  /** A message field that must be set (the loader gives null for an unset one). */
  message<T extends object>(value: T | null | undefined, field: string): T {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw this.fail(field, 'a message');
    return value;
  }

  /** A repeated message field, each entry decoded by `item` with a reader named after its index. */
  list<T extends object, R>(value: readonly T[] | undefined, field: string, item: (entry: T, reader: WireReader) => R): R[] {
    if (!Array.isArray(value)) throw this.fail(field, 'a list');
    return value.map((entry: T | null | undefined, index) => item(this.message(entry, `${field}[${index}]`), this.at(`${field}[${index}]`)));
  }

  /** A repeated string field of site ids or serials (none empty). */
  texts(value: unknown, field: string): string[] {
    if (!Array.isArray(value)) throw this.fail(field, 'a list of non-empty strings');
    return value.map((item: unknown, index) => this.text(item, `${field}[${index}]`));
  }

  /** A repeated bytes field. */
  bytesList(value: unknown, field: string): Uint8Array[] {
    if (!Array.isArray(value)) throw this.fail(field, 'a list of bytes');
    return value.map((item: unknown, index) => this.bytes(item, `${field}[${index}]`));
  }

  /** One of the enum names in `allowed` (the loader passes an unknown enum number through as a number). */
  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
    const match = allowed.find((name) => name === value);
    if (match === undefined) throw this.fail(field, `one of ${allowed.join(', ')}`, value);
    return match;
  }

  fail(field: string, expected: string, got?: unknown): FedgateError {
    const shown = got === undefined ? '' : `, got ${JSON.stringify(got) ?? String(got)}`;
    return new FedgateError('INVALID_ARGUMENT', `${this.where}.${field} must be ${expected}${shown}`, { reason: MALFORMED_MESSAGE });
  }
}
