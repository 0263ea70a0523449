/**
 * The aggregate's stored bytes (DESIGN.md steps 6-7) and the little-endian uint32 vector bytes under
 * them: fixed byte order whatever the host, exact round trips, slot positions read from RoundConfig,
 * and wrong lengths refused with a message that says what was expected.
 */
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../../crypto/hash.js';
import { RandomSource, dequantizeSum } from '../../../../crypto/quantize.js';
import { decodeAggregate, dequantizeAggregate, encodeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import { parameterCount, roundScale, roundSegments, vectorLength } from '../../../../crypto/secagg/config.js';
import { quantizeUpdate } from '../../../../crypto/secagg/update-vector.js';
import { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from '../../../../crypto/secagg/vector-bytes.js';
import { testRoundConfig } from '../../../support/secagg-sim.js';

const words = Uint32Array.of(0, 1, 0x01020304, 0xfffffffe, 0x80000000);
const littleEndian = [0, 0, 0, 0, 1, 0, 0, 0, 4, 3, 2, 1, 0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0x80];

describe('vector bytes', () => {
  it('writes every uint32 least significant byte first', () => {
    expect([...vectorToLittleEndianBytes(words)]).toEqual(littleEndian);
    expect([...vectorToLittleEndianBytes(words.subarray(2, 3))]).toEqual([4, 3, 2, 1]);
  });

  it('reads them back, from aligned and unaligned bytes alike', () => {
    expect([...vectorFromLittleEndianBytes(Uint8Array.from(littleEndian))]).toEqual([...words]);
    const padded = new Uint8Array(littleEndian.length + 1);
    padded.set(littleEndian, 1);
    expect([...vectorFromLittleEndianBytes(padded.subarray(1), words.length)]).toEqual([...words]);
  });

  it.each([
    [new Uint8Array(7), undefined, /multiple of 4 bytes long, got 7/],
    [new Uint8Array(8), 3, /a vector of 3 uint32 is 12 bytes, got 8/],
  ])('refuses bytes of the wrong length %#', (bytes, expected, message) => {
    expect(() => vectorFromLittleEndianBytes(bytes, expected)).toThrow(message);
    expect(() => vectorFromLittleEndianBytes(bytes, expected)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'VECTOR_LENGTH' }));
  });
});

describe('aggregate codec', () => {
  const config = testRoundConfig({ participants: ['agg-a', 'agg-b', 'agg-c'], degree: 2, parameters: 40, clipBound: 0.5 });
  const d = parameterCount(config);

  function quantizedSum(): Uint32Array {
    const sum = new Uint32Array(vectorLength(config));
    const vector = new Uint32Array(vectorLength(config));
    for (const [index, weight] of [0.25, 1, 0.5].entries()) {
      const delta = Float64Array.from({ length: d }, (_, i) => Math.sin(i * 7 + index) * 0.8);
      quantizeUpdate(config, { delta, weight, evalLossSum: 3.5 * (index + 1), evalCorrect: index, evalExamples: 10 }, vector, RandomSource.seeded(sha256(Uint8Array.of(index))));
      for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (vector[i] as number)) >>> 0;
    }
    return sum;
  }

  it('decodes exactly what dequantizing the in-memory sum gives, with sum(w) and the metrics at d, d+1, d+2, d+3', () => {
    const sum = quantizedSum();
    const decoded = decodeAggregate(config, Uint8Array.from(encodeAggregate(sum)));
    const reference = new Float64Array(sum.length);
    dequantizeSum(sum, roundSegments(config), roundScale(config), reference);
    expect([...decoded.sum]).toEqual([...sum]);
    expect([...decoded.values]).toEqual([...reference]);
    expect([...decoded.weightedDeltaSum]).toEqual([...reference.subarray(0, d)]);
    expect(decoded.weightSum).toBeCloseTo(1.75, 6);
    expect(decoded.evalLossSum).toBeCloseTo(21, 4);
    expect([decoded.evalCorrect, decoded.evalExamples]).toEqual([3, 30]);
    expect(dequantizeAggregate(config, sum)).toEqual(decoded);
  });

  it.each([-4, -1, 1, 4])('refuses aggregate bytes %i bytes off the round\'s length, naming the expected size', (offBy) => {
    const bytes = new Uint8Array(vectorLength(config) * 4 + offBy);
    expect(() => decodeAggregate(config, bytes)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'INVALID_AGGREGATE', message: expect.stringContaining(`d + 4 = ${d + 4} uint32 slots (${(d + 4) * 4} bytes)`) as unknown }),
    );
  });

  it('names what it got: the byte count, or the type of something that is not bytes', () => {
    const n = vectorLength(config);
    expect(() => decodeAggregate(config, new Uint8Array(8))).toThrow(
      expect.objectContaining({ message: `the aggregate is 8 bytes; this round's RoundConfig implies d + 4 = ${n} uint32 slots (${n * 4} bytes)` }),
    );
    expect(() => decodeAggregate(config, [1, 2] as unknown as Uint8Array)).toThrow(expect.objectContaining({ reason: 'INVALID_AGGREGATE', message: expect.stringMatching(/^the aggregate is object;/) as unknown }));
  });

  it('refuses an output buffer of another length than d + 4', () => {
    const sum = quantizedSum();
    expect(() => dequantizeAggregate(config, sum, new Float64Array(d + 3))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT', message: `the output must hold d + 4 = ${d + 4} values, got ${d + 3}` }),
    );
    const out = new Float64Array(d + 4);
    expect(dequantizeAggregate(config, sum, out).values).toBe(out);
  });
});
