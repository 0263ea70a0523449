/**
 * The unmasked aggregate of a round (DESIGN.md steps 6-7): the exact sum of the survivors' quantized
 * vectors, stored and broadcast as little-endian uint32 bytes, and read back slot by slot as
 * [sum(w * delta) (d values), sum(w), eval loss sum, correct count, eval examples]. The coordinator,
 * every committing site and `fedgate verify` read it with these functions, so they start model r+1 from
 * the same numbers.
 */
import { dequantizeSum } from '../quantize.js';
import { parameterCount, roundScale, roundSegments, vectorLength, type RoundConfig } from './config.js';
import { secaggInvalid } from './errors.js';
import { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from './vector-bytes.js';

/** The aggregate read back with the RoundConfig's bounds. */
export interface AggregateValues {
  /** Exact sum of the quantized inputs of U3, mod 2^32 (read as int32 it does not wrap). */
  readonly sum: Uint32Array;
  /** The whole sum dequantized, slot by slot (d + 4 values). */
  readonly values: Float64Array;
  /** sum(w * delta): the first d elements of `values`. */
  readonly weightedDeltaSum: Float64Array;
  /** sum(w). */
  readonly weightSum: number;
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
}

/** Dequantizes `sum` (d + 4 slots of this round) into `out`, or a fresh array. */
export function dequantizeAggregate(config: RoundConfig, sum: Uint32Array, out?: Float64Array): AggregateValues {
  const d = parameterCount(config);
  const values = out ?? new Float64Array(vectorLength(config));
  dequantizeSum(sum, roundSegments(config), roundScale(config), values);
  return {
    sum,
    values,
    weightedDeltaSum: values.subarray(0, d),
    weightSum: values[d] as number,
    evalLossSum: values[d + 1] as number,
    evalCorrect: values[d + 2] as number,
    evalExamples: values[d + 3] as number,
  };
}

/** The stored and broadcast bytes of an aggregate; a view of `sum` on little-endian hosts. */
export function encodeAggregate(sum: Uint32Array): Uint8Array {
  return vectorToLittleEndianBytes(sum);
}

/**
 * Reads aggregate bytes for the round `config` describes; INVALID_ARGUMENT 'INVALID_AGGREGATE' when
 * their length is not the round's d + 4 uint32 slots. `sum` may be a view of `bytes`.
 */
export function decodeAggregate(config: RoundConfig, bytes: Uint8Array): AggregateValues {
  const length = vectorLength(config);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== length * 4) {
    const got = bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : typeof bytes;
    throw secaggInvalid('INVALID_AGGREGATE', `the aggregate is ${got}; this round's RoundConfig implies d + 4 = ${length} uint32 slots (${length * 4} bytes)`);
  }
  return dequantizeAggregate(config, vectorFromLittleEndianBytes(bytes, length));
}
