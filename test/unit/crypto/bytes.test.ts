import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  assertBytes,
  bytesEqual,
  compareBytes,
  concatBytes,
  encodeFields,
  fromHex,
  toHex,
  u32be,
  u64be,
  utf8,
  zeroize,
} from '../../../crypto/index.js';

function expectInvalid(run: () => unknown, reason: string, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CryptoError);
  const error = caught as CryptoError;
  expect(error.code).toBe('INVALID_ARGUMENT');
  expect(error.reason).toBe(reason);
  expect(error.message).toContain(messagePart);
}

describe('encodeFields', () => {
  it('prefixes every field with its u32 big-endian length', () => {
    const encoded = encodeFields([utf8('ab'), new Uint8Array(0), Uint8Array.of(0xff)]);
    expect(toHex(encoded)).toBe('000000026162' + '00000000' + '00000001ff');
  });

  it('keeps field boundaries: ["ab","c"] and ["a","bc"] differ', () => {
    expect(toHex(encodeFields([utf8('ab'), utf8('c')]))).not.toBe(toHex(encodeFields([utf8('a'), utf8('bc')])));
  });

  it('encodes no fields as no bytes', () => {
    expect(encodeFields([]).length).toBe(0);
  });
});

describe('integers and text', () => {
  it('u32be and u64be are big-endian', () => {
    expect(toHex(u32be(0x01020304))).toBe('01020304');
    expect(toHex(u32be(0xffff_ffff))).toBe('ffffffff');
    expect(toHex(u64be(0x0102030405n))).toBe('0000000102030405');
    expect(toHex(u64be(2 ** 53 - 1))).toBe('001fffffffffffff');
    expect(toHex(u64be((1n << 64n) - 1n))).toBe('ffffffffffffffff');
  });

  it('utf8 encodes non-ASCII site ids', () => {
    expect(toHex(utf8('é€'))).toBe('c3a9e282ac');
    expect(toHex(utf8('😀'))).toBe('f09f9880');
  });

  it('concatBytes joins in order', () => {
    expect(toHex(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)))).toBe('010203');
  });
});

describe('comparison and hygiene', () => {
  it('bytesEqual compares content and length', () => {
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('compareBytes sorts lexicographically with prefixes first', () => {
    const values = [[2], [1, 0xff], [1], [], [1, 0]].map((v) => Uint8Array.from(v));
    const sorted = [...values].sort(compareBytes).map((v) => toHex(v));
    expect(sorted).toEqual(['', '01', '0100', '01ff', '02']);
    expect(compareBytes(Uint8Array.of(7), Uint8Array.of(7))).toBe(0);
  });

  it('zeroize clears every buffer and skips missing ones', () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Buffer.from([9, 9]);
    zeroize(a, null, b, undefined);
    expect([...a, ...b]).toEqual([0, 0, 0, 0, 0]);
  });

  it('hex round-trips in either case', () => {
    expect(toHex(fromHex('00ffA5'))).toBe('00ffa5');
    expect(fromHex('').length).toBe(0);
  });
});

describe('argument checks', () => {
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'assertBytes on a string', run: () => assertBytes('x', 'key'), reason: 'INVALID_BYTES', message: 'key must be a Uint8Array' },
    { name: 'assertBytes on an array', run: () => assertBytes([1, 2], 'key', 2), reason: 'INVALID_BYTES', message: 'key must be a Uint8Array of 2 bytes, got array' },
    { name: 'assertBytes wrong length', run: () => assertBytes(new Uint8Array(31), 'key', 32), reason: 'INVALID_LENGTH', message: 'key must be 32 bytes long, got 31 bytes' },
    { name: 'encodeFields non-array', run: () => encodeFields('ab' as unknown as Uint8Array[]), reason: 'INVALID_FIELDS', message: 'fields must be an array' },
    { name: 'encodeFields bad field', run: () => encodeFields([new Uint8Array(1), 'x' as unknown as Uint8Array]), reason: 'INVALID_BYTES', message: 'fields[1]' },
    { name: 'concatBytes bad part', run: () => concatBytes(new Uint8Array(1), null as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'part 1' },
    { name: 'utf8 non-string', run: () => utf8(5 as unknown as string), reason: 'INVALID_STRING', message: 'text must be a string' },
    { name: 'utf8 lone surrogate', run: () => utf8('a\ud800b'), reason: 'INVALID_STRING', message: 'lone surrogates' },
    { name: 'u32be negative', run: () => u32be(-1), reason: 'INVALID_INTEGER', message: 'got number -1' },
    { name: 'u32be too large', run: () => u32be(2 ** 32), reason: 'INVALID_INTEGER', message: '[0, 4294967295]' },
    { name: 'u32be fraction', run: () => u32be(1.5), reason: 'INVALID_INTEGER', message: 'got number 1.5' },
    { name: 'u64be unsafe number', run: () => u64be(2 ** 53), reason: 'INVALID_INTEGER', message: 'n must be an integer' },
    { name: 'u64be bigint overflow', run: () => u64be(1n << 64n), reason: 'INVALID_INTEGER', message: '2^64' },
    { name: 'u64be negative bigint', run: () => u64be(-1n), reason: 'INVALID_INTEGER', message: 'got bigint -1' },
    { name: 'bytesEqual non-bytes', run: () => bytesEqual(new Uint8Array(1), 'a' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'b must be' },
    { name: 'compareBytes non-bytes', run: () => compareBytes(undefined as unknown as Uint8Array, new Uint8Array(1)), reason: 'INVALID_BYTES', message: 'a must be' },
    { name: 'zeroize a number', run: () => zeroize(new Uint8Array(1), 5 as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'zeroize argument 1 must be a Uint8Array, got number 5' },
    { name: 'toHex non-bytes', run: () => toHex([1] as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'bytes must be' },
    { name: 'fromHex odd length', run: () => fromHex('abc'), reason: 'INVALID_HEX', message: 'even number' },
    { name: 'fromHex non-hex digit', run: () => fromHex('zz'), reason: 'INVALID_HEX', message: 'string of 2 characters' },
    { name: 'fromHex prefix', run: () => fromHex('0x00'), reason: 'INVALID_HEX', message: 'hexadecimal' },
  ];
  it.each(cases)('$name', ({ run, reason, message }) => expectInvalid(run, reason, message));
});
