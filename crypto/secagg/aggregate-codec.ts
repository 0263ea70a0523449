/**
 * The unmasked aggregate of a round (DESIGN.md steps 6-7): the exact sum of the survivors' quantized
 * vectors, stored and broadcast as little-endian uint32 bytes, and read back slot by slot as
 * [sum(w * delta) (d values), sum(w), eval loss sum, correct count, eval examples]. The coordinator,
 * every committing site and `fedgate verify` read it with these functions, so they start model r+1 from
 * the same numbers.
 */
import { decodeDistributedDp } from '../dp/distributed-dp.js';
import { dequantizeSum } from '../quantize.js';
import { parameterCount, roundScale, roundSegments, tailLength, updateWordCount, vectorLength, type RoundConfig } from './config.js';
import { compileRoundDp } from './distributed-dp-round.js';
import { secaggInvalid } from './errors.js';
import { tailSegments } from './update-vector.js';
import { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from './vector-bytes.js';

/** The aggregate read back with the RoundConfig's bounds. */
export interface AggregateValues {
  /** Exact sum of the quantized inputs of U3, mod 2^32 (read as int32 it does not wrap). */
  readonly sum: Uint32Array;
  /** The whole sum dequantized, slot by slot (d + 4 + extra metric slots values). */
  readonly values: Float64Array;
  /** sum(w * delta): the first d elements of `values`. */
  readonly weightedDeltaSum: Float64Array;
  /** sum(w). */
  readonly weightSum: number;
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  /** The extra metric sums of RoundConfig.metricSlots, in slot order (metric-slots.ts); empty without them. */
  readonly metricSums: Float64Array;
}

/**
 * Dequantizes `sum` (the round's vectorLength slots) into `out` (d + 4 values), or a fresh array. Under
 * distributed DP the first D words are decoded instead (distributed-dp.ts decodeDistributedDp: reduce mod
 * 2^b, centre, divide by gamma, undo the rotation): weightedDeltaSum is then the noisy sum of the clipped
 * deltas and weightSum the number of survivors (every w is 1), so model r+1 takes their plain average.
 */
export function dequantizeAggregate(config: RoundConfig, sum: Uint32Array, out?: Float64Array): AggregateValues {
  const d = parameterCount(config);
  const tail = tailLength(config);
  const values = out ?? new Float64Array(d + tail);
  if (values.length !== d + tail) throw secaggInvalid('INVALID_ARGUMENT', `the output must hold d + ${tail} = ${d + tail} values, got ${values.length}`);
  if (config.distributedDp === undefined) {
    dequantizeSum(sum, roundSegments(config), roundScale(config), values);
  } else {
    const words = updateWordCount(config);
    values.set(decodeDistributedDp(compileRoundDp(config), sum.subarray(0, words)), 0);
    dequantizeSum(sum.subarray(words), tailSegments(config), roundScale(config), values.subarray(d));
  }
  return {
    sum,
    values,
    weightedDeltaSum: values.subarray(0, d),
    weightSum: values[d] as number,
    evalLossSum: values[d + 1] as number,
    evalCorrect: values[d + 2] as number,
    evalExamples: values[d + 3] as number,
    metricSums: values.subarray(d + 4),
  };
}

/** The stored and broadcast bytes of an aggregate; a view of `sum` on little-endian hosts. */
export function encodeAggregate(sum: Uint32Array): Uint8Array {
  return vectorToLittleEndianBytes(sum);
}

/**
 * Reads aggregate bytes for the round `config` describes; INVALID_ARGUMENT 'INVALID_AGGREGATE' when
 * their length is not the round's vectorLength uint32 slots. `sum` may be a view of `bytes`.
 */
export function decodeAggregate(config: RoundConfig, bytes: Uint8Array): AggregateValues {
  const length = vectorLength(config);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== length * 4) {
    const got = bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : typeof bytes;
    throw secaggInvalid('INVALID_AGGREGATE', `the aggregate is ${got}; this round's RoundConfig implies ${config.distributedDp === undefined ? 'd' : 'D (d padded to a power of two)'} + ${tailLength(config)} = ${length} uint32 slots (${length * 4} bytes)`);
  }
  return dequantizeAggregate(config, vectorFromLittleEndianBytes(bytes, length));
}
