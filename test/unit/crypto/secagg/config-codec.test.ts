/**
 * Canonical RoundConfig decoding: one byte string, one config, and back to the same bytes. A leading
 * byte-order mark (which TextDecoder strips by default) is refused, and hyper-parameter keys that name
 * Object.prototype members - "__proto__" above all - are kept as plain own keys, never dropped.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, encodeFields, u32be, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { createRoundConfig, makeRoundId, type HyperParameterValue, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { decodeRoundConfig, encodeRoundConfig, roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { FieldReader } from '../../../../crypto/secagg/fields.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const BOM = Uint8Array.of(0xef, 0xbb, 0xbf);

function config(overrides: { federationId?: string; participants?: string[]; hyperParameters?: Record<string, HyperParameterValue> } = {}): RoundConfig {
  return createRoundConfig({
    federationId: overrides.federationId ?? 'fed',
    roundId: makeRoundId(3n, new Uint8Array(16).fill(1)),
    participants: overrides.participants ?? ['site-a', 'site-b', 'site-c'],
    taskHash: sha256(utf8('task')),
    modelHash: sha256(utf8('model')),
    optimizerStateHash: sha256(utf8('optimiser')),
    hyperParameters: overrides.hyperParameters ?? { lr: 0.1 },
    neighbourDegree: 2,
    layout: { parameterSegments: [{ length: 3, bound: 1 }], maxLossPerExample: 5, maxEvalExamples: 10 },
    maxWeight: 10,
  });
}

/** `bytes` with the only occurrence of `marker` (3 ASCII bytes) replaced by EF BB BF: same length, so every length prefix still holds. */
function withBomAt(bytes: Uint8Array, marker: string): Uint8Array {
  const needle = utf8(marker);
  const hits: number[] = [];
  for (let i = 0; i + needle.length <= bytes.length; i++) if (bytesEqual(bytes.subarray(i, i + needle.length), needle)) hits.push(i);
  expect(hits).toHaveLength(1);
  const out = new Uint8Array(bytes);
  out.set(BOM, hits[0] as number);
  return out;
}

describe('RoundConfig decoding', () => {
  it('keeps keys named after Object.prototype members as own keys, and re-encodes to the same bytes', () => {
    // JSON.parse makes "__proto__" an own key, as a hostile or careless task document would.
    const hyperParameters = JSON.parse('{"__proto__": 0.25, "constructor": "sgd", "toString": true, "hasOwnProperty": 3, "lr": 0.1}') as Record<string, HyperParameterValue>;
    const original = config({ hyperParameters });
    const bytes = encodeRoundConfig(original);
    const decoded = decodeRoundConfig(bytes);
    expect(Object.keys(decoded.hyperParameters).sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty', 'lr', 'toString']);
    expect(Object.getOwnPropertyDescriptor(decoded.hyperParameters, '__proto__')?.value).toBe(0.25);
    expect(Object.getOwnPropertyDescriptor(decoded.hyperParameters, 'constructor')?.value).toBe('sgd');
    // The decoded object's prototype is untouched, and nothing leaked onto Object.prototype.
    expect(Object.getPrototypeOf(decoded.hyperParameters)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['lr']).toBeUndefined();
    expect(encodeRoundConfig(decoded)).toEqual(bytes);
    expect(roundConfigHash(decoded)).toEqual(roundConfigHash(original));
    // A copy made the way the coordinator and createRoundConfig copy hyper-parameters keeps them too.
    expect(encodeRoundConfig(createRoundConfig({ ...decoded, hyperParameters: { ...decoded.hyperParameters } }))).toEqual(bytes);
  });

  it('round-trips every config byte for byte, a U+FEFF inside a string included', () => {
    const original = config({ federationId: 'fed\uFEFFx', participants: ['a\uFEFF', 'b', 'c'], hyperParameters: { note: 'x\uFEFFy', 'k\uFEFF': 1 } });
    const bytes = encodeRoundConfig(original);
    const decoded = decodeRoundConfig(bytes);
    expect(decoded.federationId).toBe('fed\uFEFFx');
    expect(decoded.hyperParameters).toEqual({ note: 'x\uFEFFy', 'k\uFEFF': 1 });
    expect(encodeRoundConfig(decoded)).toEqual(bytes);
  });

  it.each([
    ['federationId', { federationId: 'QQQfed' }, 'QQQ', 'RoundConfig.federationId starts with a UTF-8 byte-order mark'],
    ['a participant', { participants: ['QQQz', 'site-a', 'site-b'] }, 'QQQ', 'RoundConfig.participants[0] starts with a UTF-8 byte-order mark'],
    ['a hyper-parameter key', { hyperParameters: { lr: 0.1, QQQz: 1 } }, 'QQQ', 'RoundConfig.hyperParameters key starts with a UTF-8 byte-order mark'],
    ['a hyper-parameter value', { hyperParameters: { optimizer: 'QQQsgd' } }, 'QQQ', 'RoundConfig.hyperParameters[optimizer] starts with a UTF-8 byte-order mark'],
  ] as const)('refuses a leading byte-order mark in %s', (_name, overrides, marker, message) => {
    const forged = withBomAt(encodeRoundConfig(config(overrides as Parameters<typeof config>[0])), marker);
    const error = refusal(() => decodeRoundConfig(forged));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ENCODING' });
    expect(error.message).toContain(message);
  });

  it('refuses a byte-order mark before the label', () => {
    const bytes = encodeRoundConfig(config());
    const labelLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, false);
    const forged = Uint8Array.of(...u32be(labelLength + 3), ...BOM, ...bytes.subarray(4));
    expect(refusal(() => decodeRoundConfig(forged))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ENCODING' });
  });

  it.each([
    ['federationId', { federationId: '\uFEFFfed' }, 'RoundConfig.federationId'],
    ['a participant', { participants: ['\uFEFFa', 'b', 'c'] }, 'RoundConfig.participants[2]'],
    ['a hyper-parameter key', { hyperParameters: { '\uFEFFlr': 0.1 } }, 'RoundConfig.hyperParameters key'],
    ['a hyper-parameter value', { hyperParameters: { optimizer: '\uFEFFsgd' } }, 'RoundConfig.hyperParameters["optimizer"]'],
  ] as const)('will not encode a leading U+FEFF in %s (it would have no canonical decoding)', (_name, overrides, field) => {
    const error = refusal(() => encodeRoundConfig(config(overrides as Parameters<typeof config>[0])));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ROUND_CONFIG' });
    expect(error.message).toContain(`${field}`);
    expect(error.message).toContain('U+FEFF');
  });
});

describe('RoundConfig.purpose (evaluation-only rounds, rounds that only train)', () => {
  it('keeps the bytes of a default config (existing ledgers keep their hashes) and binds any other purpose into H(RoundConfig)', () => {
    const base = config();
    const bytes = encodeRoundConfig(base);
    // The default is never written: the encoding ends with the plaintext byte, as before purposes existed.
    expect(Array.from(bytes.subarray(-5))).toEqual([0, 0, 0, 1, 0]);
    const trainOnly = createRoundConfig({ ...base, purpose: 'train' });
    const evaluation = createRoundConfig({ ...base, purpose: 'evaluate', layout: { ...base.layout, parameterSegments: [] } });
    for (const other of [trainOnly, evaluation]) {
      const encoded = encodeRoundConfig(other);
      expect(decodeRoundConfig(encoded)).toEqual(other);
      expect(bytesEqual(encodeRoundConfig(decodeRoundConfig(encoded)), encoded)).toBe(true);
      expect(bytesEqual(roundConfigHash(other), roundConfigHash(base))).toBe(false);
    }
    expect(decodeRoundConfig(bytes).purpose).toBe('train_and_evaluate');
  });

  it('refuses the default written out (a second encoding of one config) and unknown codes', () => {
    const bytes = encodeRoundConfig(config());
    const withField = (code: number): Uint8Array => {
      const out = new Uint8Array(bytes.length + 5);
      out.set(bytes);
      out.set(u32be(1), bytes.length);
      out[bytes.length + 4] = code;
      return out;
    };
    expect(decodeRoundConfig(withField(1)).purpose).toBe('train');
    // Code 2 is an evaluation-only round, which this config's parameter segment rules out.
    expect(refusal(() => decodeRoundConfig(withField(2))).reason).toBe('INVALID_ROUND_CONFIG');
    expect(refusal(() => decodeRoundConfig(withField(0))).reason).toBe('INVALID_ENCODING');
    expect(refusal(() => decodeRoundConfig(withField(9))).reason).toBe('INVALID_ENCODING');
  });

  it('an evaluation-only round carries no parameter segment, every other round at least one', () => {
    const base = config();
    expect(refusal(() => createRoundConfig({ ...base, purpose: 'evaluate' })).message).toMatch(/parameterSegments must be empty in an evaluation-only round/);
    expect(refusal(() => createRoundConfig({ ...base, purpose: 'train', layout: { ...base.layout, parameterSegments: [] } })).message).toMatch(/parameterSegments must be a non-empty array/);
  });
});

/** The top-level fields of `bytes` (a RoundConfig encoding), for a forger to replace one. */
function topFields(bytes: Uint8Array): Uint8Array[] {
  const reader = new FieldReader(bytes, 'test');
  const fields: Uint8Array[] = [];
  while (!reader.done()) fields.push(reader.field('field'));
  return fields;
}

/** An honest encoding with field `index` replaced (8 = hyperParameters, 1 = version). */
function withField(index: number, value: Uint8Array): Uint8Array {
  const fields = topFields(encodeRoundConfig(config()));
  fields[index] = value;
  return encodeFields(fields);
}

const hyper = (...entries: [string, Uint8Array][]): Uint8Array => encodeFields(entries.map(([key, value]) => encodeFields([utf8(key), value])));

describe('RoundConfig decoding against forged bytes (one config, one encoding)', () => {
  it('keeps text that only looks like a byte-order mark at one or two of its three bytes', () => {
    // U+0EFF is E0 BB BF, U+F03F is EF 80 BF, U+FEC0 is EF BB 80: valid UTF-8, no BOM.
    for (const text of ['\u0EFFx', '\uF03Fx', '\uFEC0x', 'ab']) {
      const original = config({ hyperParameters: { note: text } });
      expect(decodeRoundConfig(encodeRoundConfig(original)).hyperParameters).toEqual({ note: text });
    }
  });

  it('refuses a text that is the byte-order mark and nothing else, naming the field', () => {
    const error = refusal(() => decodeRoundConfig(withField(8, hyper(['note', Uint8Array.of(0x73, ...BOM)]))));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ENCODING' });
    expect(error.message).toBe('RoundConfig.hyperParameters[note] starts with a UTF-8 byte-order mark (EF BB BF), which a canonical encoding never holds');
  });

  it('refuses text that is not UTF-8, with the decoder error as cause', () => {
    const error = refusal(() => decodeRoundConfig(withField(8, hyper(['note', Uint8Array.of(0x73, 0x61, 0xff)]))));
    expect(error).toMatchObject({ reason: 'INVALID_ENCODING', message: 'RoundConfig.hyperParameters[note] is not valid UTF-8' });
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('refuses hyper-parameter keys out of order or twice (either would give one config two encodings)', () => {
    const number = Uint8Array.of(0x6e, ...new Uint8Array(8));
    const expected = { reason: 'INVALID_ENCODING', message: 'RoundConfig.hyperParameters: keys must be distinct and sorted' };
    expect(refusal(() => decodeRoundConfig(withField(8, hyper(['b', number], ['a', number]))))).toMatchObject(expected);
    expect(refusal(() => decodeRoundConfig(withField(8, hyper(['a', number], ['a', number]))))).toMatchObject(expected);
    expect(decodeRoundConfig(withField(8, hyper(['a', number], ['b', number]))).hyperParameters).toEqual({ a: 0, b: 0 });
  });

  it.each<[string, Uint8Array]>([
    ['a boolean byte 2', Uint8Array.of(0x62, 2)],
    ['a boolean of two bytes', Uint8Array.of(0x62, 1, 0)],
    ['an empty boolean', Uint8Array.of(0x62)],
    ['a number of 9 bytes', Uint8Array.of(0x6e, ...new Uint8Array(9))],
    ['a number of 7 bytes', Uint8Array.of(0x6e, ...new Uint8Array(7))],
    ['an unknown tag', Uint8Array.of(0x78, 1)],
    ['no tag at all', new Uint8Array(0)],
  ])('refuses a hyper-parameter value that is %s', (_what, value) => {
    expect(refusal(() => decodeRoundConfig(withField(8, hyper(['flag', value]))))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      reason: 'INVALID_ENCODING',
      message: 'RoundConfig.hyperParameters["flag"]: malformed value',
    });
  });

  it('reads booleans and numbers that are well formed', () => {
    const decoded = decodeRoundConfig(withField(8, hyper(['off', Uint8Array.of(0x62, 0)], ['on', Uint8Array.of(0x62, 1)], ['x', Uint8Array.of(0x6e, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)])));
    expect(decoded.hyperParameters).toEqual({ off: false, on: true, x: 1 });
  });

  it('refuses another encoding version and another label', () => {
    expect(refusal(() => decodeRoundConfig(withField(1, u32be(2))))).toMatchObject({
      reason: 'UNSUPPORTED_VERSION',
      message: 'RoundConfig: encoding version 2 is not supported (expected 1)',
    });
    expect(refusal(() => decodeRoundConfig(withField(0, utf8('fedgate/v1/round-confiG'))))).toMatchObject({
      reason: 'INVALID_ENCODING',
      message: 'RoundConfig: label must be fedgate/v1/round-config',
    });
  });

  it('will not encode a leading U+FEFF, under the round_config stage', () => {
    expect(refusal(() => encodeRoundConfig(config({ federationId: '\uFEFFfed' })))).toMatchObject({ stage: 'round_config' });
  });
});
