/**
 * Small codecs shared by the canonical encodings of secagg/: a reader for `encodeFields` output,
 * float64 big-endian numbers and the canonical encoding of a set of site ids. Every byte string that is
 * hashed or signed in the protocol is built from these and from crypto/bytes.ts, never from JSON.
 */
import { encodeFields, utf8 } from '../bytes.js';
import { sortSiteIds } from '../graph.js';
import { secaggInvalid } from './errors.js';

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** `value` as 8 bytes IEEE 754 big-endian; -0 is written as +0 so that equal numbers encode equally. */
export function f64be(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, value === 0 ? 0 : value, false);
  return out;
}

/** A single byte 0 or 1. */
export function booleanByte(value: boolean): Uint8Array {
  return Uint8Array.of(value ? 1 : 0);
}

/**
 * Canonical encoding of a set of site ids: encodeFields of the UTF-8 ids in byte order. Used for U2 and
 * U3 wherever they are hashed or signed ("sorted U3" in DESIGN.md steps 5 and 7).
 */
export function encodeSiteIdSet(siteIds: Iterable<string>): Uint8Array {
  return encodeFields(sortSiteIds(siteIds).map((siteId) => utf8(siteId)));
}

/** Sequential reader of an `encodeFields` byte string; every malformed input is INVALID_ARGUMENT. */
export class FieldReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The next length-prefixed field (a view into the input, not a copy). */
  field(name: string): Uint8Array {
    if (this.offset + 4 > this.bytes.length) {
      throw secaggInvalid('TRUNCATED_ENCODING', `${this.what}: field ${name} is missing (input ends at byte ${this.offset})`);
    }
    const length = this.view.getUint32(this.offset, false);
    const start = this.offset + 4;
    if (start + length > this.bytes.length) {
      throw secaggInvalid(
        'TRUNCATED_ENCODING',
        `${this.what}: field ${name} declares ${length} bytes but only ${this.bytes.length - start} remain`,
      );
    }
    this.offset = start + length;
    return this.bytes.subarray(start, start + length);
  }

  fixed(name: string, length: number): Uint8Array {
    const value = this.field(name);
    if (value.length !== length) {
      throw secaggInvalid('INVALID_ENCODING', `${this.what}: field ${name} must be ${length} bytes, got ${value.length}`);
    }
    return value;
  }

  text(name: string): string {
    // A missing or truncated field keeps its own error; only the decoding is reported as bad UTF-8.
    const bytes = this.field(name);
    try {
      return textDecoder.decode(bytes);
    } catch (cause) {
      throw secaggInvalid('INVALID_ENCODING', `${this.what}: field ${name} is not valid UTF-8`, { cause });
    }
  }

  u32(name: string): number {
    return new DataView(copyOf(this.fixed(name, 4)).buffer).getUint32(0, false);
  }

  u64(name: string): bigint {
    return new DataView(copyOf(this.fixed(name, 8)).buffer).getBigUint64(0, false);
  }

  f64(name: string): number {
    return new DataView(copyOf(this.fixed(name, 8)).buffer).getFloat64(0, false);
  }

  boolean(name: string): boolean {
    const byte = this.fixed(name, 1)[0];
    if (byte !== 0 && byte !== 1) {
      throw secaggInvalid('INVALID_ENCODING', `${this.what}: field ${name} must be the byte 0 or 1, got ${String(byte)}`);
    }
    return byte === 1;
  }

  /** A nested encodeFields list, read to its end. */
  list(name: string): Uint8Array[] {
    const nested = new FieldReader(this.field(name), `${this.what}.${name}`);
    const items: Uint8Array[] = [];
    while (!nested.done()) items.push(nested.field(`${name}[${items.length}]`));
    return items;
  }

  done(): boolean {
    return this.offset === this.bytes.length;
  }

  /** Throws unless every byte was consumed (trailing bytes would make two encodings of one value). */
  end(): void {
    if (!this.done()) {
      throw secaggInvalid('INVALID_ENCODING', `${this.what}: ${this.bytes.length - this.offset} unexpected trailing bytes`);
    }
  }
}

function copyOf(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
