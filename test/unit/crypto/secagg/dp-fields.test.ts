/**
 * RoundConfig.distributedDp as a field: the structural rules a decoded or forged value must meet (each
 * refused by name, each boundary accepted) and its canonical encoding under H(RoundConfig) (label,
 * mechanism code, numbers and seed; anything else in the bytes is refused).
 */
import { describe, expect, it } from 'vitest';
import { encodeFields, u32be, utf8 } from '../../../../crypto/bytes.js';
import { f64be } from '../../../../crypto/secagg/fields.js';
import {
  DP_ROTATION_SEED_LENGTH,
  decodeDistributedDpField,
  encodeDistributedDpField,
  validateDistributedDp,
  type RoundDistributedDp,
} from '../../../../crypto/secagg/dp-fields.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const dp: RoundDistributedDp = {
  mechanism: 'discrete_gaussian',
  clipNorm: 1.5,
  noiseMultiplier: 0.75,
  toleratedColluders: 1,
  ringBits: 20,
  scale: 2 ** 12,
  rotationSeed: Uint8Array.from({ length: DP_ROTATION_SEED_LENGTH }, (_, index) => index),
};
const THRESHOLD = 4;

/** validateDistributedDp's complaint about `value`, as "field message". */
function complaint(value: unknown): string | undefined {
  try {
    validateDistributedDp(value as RoundDistributedDp, THRESHOLD, (field, message) => {
      throw new Error(`${field} ${message}`);
    });
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

describe('validateDistributedDp', () => {
  it('accepts the valid field and each boundary: colluders 0 and t - 1, rings of 2 and 32 bits', () => {
    for (const change of [{}, { toleratedColluders: 0 }, { toleratedColluders: THRESHOLD - 1 }, { ringBits: 2 }, { ringBits: 32 }, { scale: 2 ** -40 }]) {
      expect(complaint({ ...dp, ...change })).toBeUndefined();
    }
  });

  it.each([
    ['a null field', null, 'distributedDp must be an object'],
    ['a field that is a string', 'discrete_gaussian', 'distributedDp must be an object'],
    ['an unknown mechanism', { ...dp, mechanism: 'skellam' }, 'distributedDp.mechanism must be one of discrete_gaussian, got skellam'],
    ['a zero clip norm', { ...dp, clipNorm: 0 }, 'distributedDp.clipNorm must be a finite number > 0'],
    ['an infinite clip norm', { ...dp, clipNorm: Infinity }, 'distributedDp.clipNorm'],
    ['a clip norm given as text', { ...dp, clipNorm: '1' }, 'distributedDp.clipNorm'],
    ['a negative noise multiplier', { ...dp, noiseMultiplier: -0.5 }, 'distributedDp.noiseMultiplier'],
    ['a NaN noise multiplier', { ...dp, noiseMultiplier: Number.NaN }, 'distributedDp.noiseMultiplier'],
    ['a zero scale', { ...dp, scale: 0 }, 'distributedDp.scale'],
    ['t tolerated colluders', { ...dp, toleratedColluders: THRESHOLD }, 'distributedDp.toleratedColluders must be an integer in [0, t - 1 = 3]'],
    ['negative colluders', { ...dp, toleratedColluders: -1 }, 'distributedDp.toleratedColluders'],
    ['fractional colluders', { ...dp, toleratedColluders: 0.5 }, 'distributedDp.toleratedColluders'],
    ['a 1-bit ring', { ...dp, ringBits: 1 }, 'distributedDp.ringBits must be an integer in [2, 32]'],
    ['a 33-bit ring', { ...dp, ringBits: 33 }, 'distributedDp.ringBits'],
    ['a fractional ring', { ...dp, ringBits: 20.5 }, 'distributedDp.ringBits'],
    ['a 31-byte rotation seed', { ...dp, rotationSeed: new Uint8Array(31) }, 'distributedDp.rotationSeed must be 32 bytes'],
    ['a rotation seed as an array', { ...dp, rotationSeed: Array.from(dp.rotationSeed) }, 'distributedDp.rotationSeed'],
  ] as const)('refuses %s, naming the field', (_name, value, text) => {
    expect(complaint(value)).toContain(text);
  });
});

describe('the distributedDp field encoding', () => {
  /** The field's bytes with `change` applied to its parts, in the order encodeDistributedDpField writes them. */
  const encoded = (change: Partial<Record<'label' | 'mechanism' | 'extra', Uint8Array>> = {}): Uint8Array =>
    encodeFields([
      change.label ?? utf8('fedgate/v1/distributed-dp'),
      change.mechanism ?? Uint8Array.of(1),
      f64be(dp.clipNorm),
      f64be(dp.noiseMultiplier),
      u32be(dp.toleratedColluders),
      u32be(dp.ringBits),
      f64be(dp.scale),
      dp.rotationSeed,
      ...(change.extra === undefined ? [] : [change.extra]),
    ]);

  it('is label, mechanism code 1, c, sigma, colluders, b, gamma, seed - and decodes back', () => {
    expect(encodeDistributedDpField(dp)).toEqual(encoded());
    expect(decodeDistributedDpField(encoded())).toEqual(dp);
  });

  it('decodes a seed that does not share the input buffer', () => {
    const bytes = encoded();
    const decoded = decodeDistributedDpField(bytes);
    bytes.fill(0);
    expect(decoded.rotationSeed).toEqual(dp.rotationSeed);
  });

  it.each([
    ['another label', { label: utf8('fedgate/v1/distributed-dq') }, 'RoundConfig.distributedDp: label must be fedgate/v1/distributed-dp', 'INVALID_ENCODING'],
    ['mechanism code 0', { mechanism: Uint8Array.of(0) }, 'RoundConfig.distributedDp.mechanism: code 0 is unknown (1 = discrete_gaussian)', 'INVALID_ENCODING'],
    ['mechanism code 2', { mechanism: Uint8Array.of(2) }, 'code 2 is unknown', 'INVALID_ENCODING'],
    ['a two-byte mechanism', { mechanism: Uint8Array.of(0, 1) }, 'field mechanism must be 1 bytes, got 2', 'INVALID_ENCODING'],
    ['a trailing field', { extra: Uint8Array.of(0) }, 'RoundConfig.distributedDp: 5 unexpected trailing bytes', 'INVALID_ENCODING'],
  ] as const)('refuses %s', (_name, change, text, reason) => {
    const error = refusal(() => decodeDistributedDpField(encoded(change)));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    expect(error.message).toContain(text);
  });

  it('refuses a truncated field', () => {
    const bytes = encoded();
    expect(refusal(() => decodeDistributedDpField(bytes.subarray(0, bytes.length - 1))).code).toBe('INVALID_ARGUMENT');
  });

  it('names the first missing part when the field stops early', () => {
    const parts = [utf8('fedgate/v1/distributed-dp'), Uint8Array.of(1), f64be(1), f64be(1), u32be(0), u32be(8), f64be(1)];
    expect(refusal(() => decodeDistributedDpField(new Uint8Array(0))).message).toContain('RoundConfig.distributedDp: field label is missing');
    const names = ['mechanism', 'clipNorm', 'noiseMultiplier', 'toleratedColluders', 'ringBits', 'scale', 'rotationSeed'];
    for (const [count, name] of names.entries()) {
      const error = refusal(() => decodeDistributedDpField(encodeFields(parts.slice(0, count + 1))));
      expect(error.message).toContain(`RoundConfig.distributedDp: field ${name} is missing`);
    }
  });
});
