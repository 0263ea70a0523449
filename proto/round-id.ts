/**
 * Round ids on the wire: round.proto carries the 24 raw bytes; the chunked-transfer messages of
 * federation.proto carry them as { counter, nonce }. Both are the same id: an 8-byte big-endian counter
 * followed by 16 random bytes.
 */
import { fedgateError } from './errors.js';
import type { RoundId__Output } from './messages.js';

export function roundIdToWire(roundId: Uint8Array): RoundId__Output {
  if (roundId.length !== 24) throw fedgateError('INVALID_ARGUMENT', 'BAD_ROUND_ID', `a round id is 24 bytes, got ${roundId.length}`);
  const bytes = Buffer.from(roundId);
  const counter = bytes.readBigUInt64BE(0);
  if (counter > BigInt(Number.MAX_SAFE_INTEGER)) throw fedgateError('INVALID_ARGUMENT', 'BAD_ROUND_ID', 'round counter exceeds 2^53');
  return { counter: Number(counter), nonce: bytes.subarray(8) };
}

export function roundIdFromWire(roundId: RoundId__Output): Uint8Array {
  if (!Number.isSafeInteger(roundId.counter) || roundId.counter < 0) {
    throw fedgateError('INVALID_ARGUMENT', 'BAD_ROUND_ID', `roundId.counter must be a non-negative integer below 2^53, got ${String(roundId.counter)}`);
  }
  if (!(roundId.nonce instanceof Uint8Array) || roundId.nonce.length !== 16) {
    throw fedgateError('INVALID_ARGUMENT', 'BAD_ROUND_ID', `roundId.nonce must be 16 bytes, got ${roundId.nonce instanceof Uint8Array ? roundId.nonce.length : typeof roundId.nonce}`);
  }
  const bytes = Buffer.alloc(24);
  bytes.writeBigUInt64BE(BigInt(roundId.counter), 0);
  bytes.set(roundId.nonce, 8);
  return new Uint8Array(bytes);
}
