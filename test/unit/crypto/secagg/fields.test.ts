/**
 * The field codecs under every canonical encoding of secagg/ (crypto/secagg/fields.ts): a RoundConfig
 * comes from the coordinator, so FieldReader reads hostile bytes. Every field that is cut short, longer
 * than the input, of the wrong width, not UTF-8, not a boolean byte, or followed by trailing bytes is
 * refused with INVALID_ARGUMENT naming the field; a value has one encoding (-0 is +0), and a reader works
 * on a view at any offset of a larger buffer (a field of a protobuf message).
 */
import { describe, expect, it } from 'vitest';
import { encodeFields, u32be, u64be, utf8 } from '../../../../crypto/bytes.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import { FieldReader, booleanByte, encodeSiteIdSet, f64be } from '../../../../crypto/secagg/fields.js';
import { secaggRefusal } from '../../../support/secagg-refusal.js';

function refusal(action: () => unknown): SecAggError {
  const error = secaggRefusal(action);
  expect(error.code).toBe('INVALID_ARGUMENT');
  return error;
}

/** `bytes` placed at offset 5 of a larger buffer whose other bytes are 0xee. */
function framed(bytes: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 9).fill(0xee);
  buffer.set(bytes, 5);
  return buffer.subarray(5, 5 + bytes.length);
}

describe('FieldReader reads', () => {
  it('each kind of field in order, from a view at any offset, and knows when it is done', () => {
    const bytes = encodeFields([utf8('label'), u32be(0x01020304), u64be(2n ** 40n + 7n), f64be(-1.5), Uint8Array.of(1), Uint8Array.of(0), encodeFields([utf8('a'), new Uint8Array(0)]), new Uint8Array(0)]);
    const reader = new FieldReader(framed(bytes), 'Thing');
    expect(reader.text('label')).toBe('label');
    expect(reader.u32('n')).toBe(0x01020304);
    expect(reader.u64('big')).toBe(2n ** 40n + 7n);
    expect(reader.f64('x')).toBe(-1.5);
    expect(reader.boolean('yes')).toBe(true);
    expect(reader.boolean('no')).toBe(false);
    expect(reader.list('items')).toEqual([utf8('a'), new Uint8Array(0)]);
    expect(reader.done()).toBe(false);
    expect(reader.field('empty')).toEqual(new Uint8Array(0));
    expect(reader.done()).toBe(true);
    expect(() => reader.end()).not.toThrow();
  });

  it('a field that ends exactly at the end of the input', () => {
    const reader = new FieldReader(framed(encodeFields([Uint8Array.of(9, 9, 9)])), 'Thing');
    expect(reader.fixed('three', 3)).toEqual(Uint8Array.of(9, 9, 9));
    reader.end();
  });
});

describe('FieldReader refuses, naming the field,', () => {
  it('a length prefix cut short, and a field missing at the end', () => {
    expect(refusal(() => new FieldReader(Uint8Array.of(0, 0, 0), 'Thing').field('a'))).toMatchObject({
      reason: 'TRUNCATED_ENCODING',
      message: 'Thing: field a is missing (input ends at byte 0)',
    });
    const reader = new FieldReader(framed(encodeFields([Uint8Array.of(7)])), 'Thing');
    reader.field('a');
    expect(refusal(() => reader.field('b')).message).toBe('Thing: field b is missing (input ends at byte 5)');
  });

  it('a field declaring more bytes than remain', () => {
    const bytes = encodeFields([Uint8Array.of(1, 2, 3)]).subarray(0, 6);
    expect(refusal(() => new FieldReader(framed(bytes), 'Thing').field('a'))).toMatchObject({
      reason: 'TRUNCATED_ENCODING',
      message: 'Thing: field a declares 3 bytes but only 2 remain',
    });
  });

  it('a fixed-width field of another width', () => {
    expect(refusal(() => new FieldReader(encodeFields([new Uint8Array(5)]), 'Thing').u32('n'))).toMatchObject({
      reason: 'INVALID_ENCODING',
      message: 'Thing: field n must be 4 bytes, got 5',
    });
    expect(refusal(() => new FieldReader(encodeFields([new Uint8Array(7)]), 'Thing').u64('n')).message).toBe('Thing: field n must be 8 bytes, got 7');
    expect(refusal(() => new FieldReader(encodeFields([new Uint8Array(9)]), 'Thing').f64('x')).message).toBe('Thing: field x must be 8 bytes, got 9');
  });

  it('text that is not UTF-8, with the decoder error as cause', () => {
    const error = refusal(() => new FieldReader(encodeFields([Uint8Array.of(0x61, 0xff)]), 'Thing').text('name'));
    expect(error).toMatchObject({ reason: 'INVALID_ENCODING', message: 'Thing: field name is not valid UTF-8' });
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('a text field that is missing or truncated as such, not as bad UTF-8', () => {
    expect(refusal(() => new FieldReader(new Uint8Array(0), 'Thing').text('name'))).toMatchObject({
      reason: 'TRUNCATED_ENCODING',
      message: 'Thing: field name is missing (input ends at byte 0)',
    });
    expect(refusal(() => new FieldReader(Uint8Array.of(0, 0, 0, 9, 0x61), 'Thing').text('name'))).toMatchObject({
      reason: 'TRUNCATED_ENCODING',
      message: 'Thing: field name declares 9 bytes but only 1 remain',
    });
  });

  it('a boolean byte other than 0 and 1', () => {
    expect(refusal(() => new FieldReader(encodeFields([Uint8Array.of(2)]), 'Thing').boolean('flag'))).toMatchObject({
      reason: 'INVALID_ENCODING',
      message: 'Thing: field flag must be the byte 0 or 1, got 2',
    });
  });

  it('a list item cut short, naming the list and the item', () => {
    const bad = encodeFields([Uint8Array.of(0, 0, 0, 1, 7, 0, 0)]);
    expect(refusal(() => new FieldReader(bad, 'Thing').list('items')).message).toBe('Thing.items: field items[1] is missing (input ends at byte 5)');
  });

  it('trailing bytes (a second encoding of the same value)', () => {
    const reader = new FieldReader(framed(Uint8Array.of(...encodeFields([Uint8Array.of(1)]), 0, 0)), 'Thing');
    reader.field('a');
    expect(reader.done()).toBe(false);
    expect(refusal(() => reader.end())).toMatchObject({ reason: 'INVALID_ENCODING', message: 'Thing: 2 unexpected trailing bytes' });
  });
});

describe('field encoders', () => {
  it('write float64 big-endian, -0 as +0, booleans as one byte, site id sets in id order', () => {
    expect(f64be(1)).toEqual(Uint8Array.of(0x3f, 0xf0, 0, 0, 0, 0, 0, 0));
    expect(f64be(-0)).toEqual(new Uint8Array(8));
    expect(f64be(-2)).toEqual(Uint8Array.of(0xc0, 0, 0, 0, 0, 0, 0, 0));
    expect(booleanByte(true)).toEqual(Uint8Array.of(1));
    expect(booleanByte(false)).toEqual(Uint8Array.of(0));
    expect(encodeSiteIdSet(['b', 'a', 'c'])).toEqual(encodeFields([utf8('a'), utf8('b'), utf8('c')]));
  });
});
