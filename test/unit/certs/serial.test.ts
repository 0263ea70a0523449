import { describe, expect, it } from 'vitest';
import { PkiError, normalizeSerial, randomSerial } from '../../../certs/index.js';
import { serialFromDerHex, serialToDerHex } from '../../../certs/serial.js';

describe('certificate serials', () => {
  it.each([
    ['0a1b', 'A1B'],
    ['0x00FF', 'FF'],
    ['4d:b0:fe', '4DB0FE'],
    [' 7F ', '7F'],
  ])('normalises %j to %j', (input, expected) => {
    expect(normalizeSerial(input)).toBe(expected);
  });

  it.each([['', 'hex'], ['xyz', 'hex'], ['0', 'positive'], ['00', 'positive'], ['1'.repeat(41), '20 octets']])(
    'rejects %j',
    (input, message) => {
      expect(() => normalizeSerial(input, 'serial')).toThrow(PkiError);
      expect(() => normalizeSerial(input, 'serial')).toThrow(new RegExp(message));
    },
  );

  it('encodes DER INTEGER contents minimally and positively', () => {
    expect(serialToDerHex('A1B')).toBe('0A1B');
    expect(serialToDerHex('80')).toBe('0080');
    expect(serialToDerHex('7F')).toBe('7F');
    expect(serialFromDerHex('0080')).toBe('80');
    expect(() => serialFromDerHex('80')).toThrow(/positive INTEGER/);
  });

  it('draws distinct canonical serials of at most 16 bytes', () => {
    const serials = Array.from({ length: 200 }, randomSerial);
    expect(new Set(serials).size).toBe(200);
    for (const serial of serials) {
      expect(normalizeSerial(serial)).toBe(serial);
      expect(serial.length).toBeLessThanOrEqual(32);
      expect(Number.parseInt(serialToDerHex(serial).slice(0, 2), 16)).toBeLessThan(0x80);
    }
  });
});
