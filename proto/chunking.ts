/**
 * Chunked transfer of large payloads (models, masked inputs) over gRPC streams. gRPC caps a message
 * at 4 MiB by default, and one huge message is slow and all-or-nothing (flower #3006); a stream of
 * ~1 MiB chunks with a SHA-256 over the whole is neither.
 *
 * Sender: `chunkPayload` yields views of the payload (no copy). Receiver: `ChunkAssembler` checks
 * every chunk as it arrives (order, running length against the declared length and a hard maximum),
 * hashes incrementally, and copies each byte once, into the final buffer.
 */
import { Sha256Stream, sha256 as sha256Bytes } from '../crypto/hash.js';
import { fedgateError } from './errors.js';
import { SHA256_BYTES } from './messages.js';

export const MIB = 1024 * 1024;
/** @default 1 MiB: large enough to amortise per-message costs, far below gRPC's 4 MiB default limit. */
export const DEFAULT_CHUNK_BYTES = MIB;
/** Largest chunk a sender may use; receivers' message limits (channel-options.ts) are sized from it. */
export const MAX_CHUNK_BYTES = 2 * MIB;

export interface PayloadChunk {
  readonly offset: number;
  /** A view into the payload, valid while the payload is. */
  readonly data: Buffer;
  readonly last: boolean;
}

/** Splits `payload` into views of `chunkBytes` (the last may be shorter; an empty payload yields one empty chunk). */
export function* chunkPayload(payload: Uint8Array, chunkBytes: number = DEFAULT_CHUNK_BYTES): Generator<PayloadChunk> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_CHUNK_SIZE', `chunkBytes must be an integer in [1, ${MAX_CHUNK_BYTES}]; got ${String(chunkBytes)}`);
  }
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (bytes.length === 0) {
    yield { offset: 0, data: bytes, last: true };
    return;
  }
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    const end = Math.min(offset + chunkBytes, bytes.length);
    yield { offset, data: bytes.subarray(offset, end), last: end === bytes.length };
  }
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** SHA-256 of `payload` as a Buffer, the type the wire messages carry (crypto/hash.ts computes it). */
export function sha256(payload: Uint8Array): Buffer {
  return asBuffer(sha256Bytes(payload));
}

/** Checks that a received digest field holds exactly 32 bytes. */
export function checkSha256(value: Uint8Array | null | undefined, field: string): Buffer {
  if (value === null || value === undefined || value.length !== SHA256_BYTES) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_HASH', `${field} must be a ${SHA256_BYTES}-byte SHA-256 digest; got ${value?.length ?? 0} bytes`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export interface AssemblerOptions {
  /** Hard cap on the payload size; checked against declared lengths before anything is kept. */
  readonly maxBytes: number;
  /** Names the transfer in error messages, e.g. "masked input upload for round 12". */
  readonly what: string;
  /**
   * Buffer to assemble into when large enough, e.g. last round's model buffer: transfers of the same
   * size then allocate nothing. The payload returned by `finish` is a view of it.
   */
  readonly destination?: Buffer;
}

export interface ExpectedTotal {
  readonly totalLength: number;
  readonly sha256: Buffer;
}

/**
 * Reassembles one transfer. Create it with the declared total when the sender announces it first
 * (uploads), or without (downloads, where the trailer closes the stream); either way `finish` checks
 * the total length and hash and returns the payload.
 *
 * Each byte is copied once: into the output buffer as it arrives when the size is known (declared, or
 * bounded by `destination`), otherwise the chunks are kept by reference and copied once at the end.
 */
export class ChunkAssembler {
  private readonly hash = new Sha256Stream();
  private readonly options: AssemblerOptions;
  private readonly declared: ExpectedTotal | undefined;
  /** Contiguous output being filled in place, when there is one. */
  private output: Buffer | undefined;
  /** Received chunks kept by reference when there is no output buffer (unknown total, no destination). */
  private readonly pending: Buffer[] = [];
  private received = 0;
  private finished = false;

  constructor(options: AssemblerOptions, expected?: ExpectedTotal) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) {
      throw fedgateError('INVALID_ARGUMENT', 'INVALID_LIMIT', `maxBytes must be a non-negative safe integer; got ${String(options.maxBytes)}`);
    }
    this.options = options;
    this.declared = expected === undefined ? undefined : this.checkTotal(expected, 'declared');
    // Without a declared total, a destination is filled until a chunk no longer fits.
    if (this.declared === undefined) this.output = options.destination;
  }

  get receivedBytes(): number {
    return this.received;
  }

  /** Accepts the non-empty chunk at `offset`. */
  accept(offset: number, data: Buffer): void {
    const { what } = this.options;
    if (this.finished) throw fedgateError('INVALID_ARGUMENT', 'CHUNK_AFTER_END', `${what}: chunk at offset ${offset} arrived after the transfer ended`);
    // An empty chunk carries nothing and would let a peer keep a transfer open for free.
    if (data.length === 0) throw fedgateError('INVALID_ARGUMENT', 'EMPTY_CHUNK', `${what}: chunk at offset ${offset} carries no data`);
    if (offset !== this.received) {
      throw fedgateError(
        'INVALID_ARGUMENT',
        'OUT_OF_ORDER_CHUNK',
        `${what}: chunk offset must be ${this.received} (the bytes received so far); got ${offset}`,
      );
    }
    const end = this.received + data.length;
    if (this.declared !== undefined && end > this.declared.totalLength) {
      throw fedgateError(
        'INVALID_ARGUMENT',
        'TRANSFER_OVER_LENGTH',
        `${what}: chunk of ${data.length} bytes at offset ${offset} runs past the declared total length ${this.declared.totalLength}`,
      );
    }
    if (end > this.options.maxBytes) {
      throw fedgateError('RESOURCE_EXHAUSTED', 'TRANSFER_TOO_LARGE', `${what}: more than the limit of ${this.options.maxBytes} bytes (got ${end} so far)`);
    }
    this.hash.update(data);
    // The output of a declared transfer is allocated at its first byte, so a header alone costs nothing.
    if (this.declared !== undefined && this.output === undefined) this.output = this.allocate(this.declared.totalLength);
    if (this.output !== undefined && end > this.output.length) {
      // Unknown total outgrew the destination: keep what it holds as the first pending chunk.
      this.pending.push(this.output.subarray(0, this.received));
      this.output = undefined;
    }
    if (this.output !== undefined) data.copy(this.output, offset);
    else this.pending.push(data);
    this.received = end;
  }

  /**
   * Ends the transfer. `trailer` is the closing total (downloads); with a declared total it must agree.
   * Returns the payload as one contiguous Buffer (possibly a view of `destination`).
   */
  finish(trailer?: ExpectedTotal): Buffer {
    const { what } = this.options;
    if (this.finished) throw fedgateError('INVALID_ARGUMENT', 'CHUNK_AFTER_END', `${what}: the transfer already ended`);
    this.finished = true;
    const closing = trailer === undefined ? undefined : this.checkTotal(trailer, 'trailer');
    if (closing !== undefined && this.declared !== undefined &&
      (closing.totalLength !== this.declared.totalLength || !closing.sha256.equals(this.declared.sha256))) {
      throw fedgateError('INVALID_ARGUMENT', 'TRAILER_MISMATCH', `${what}: the trailer disagrees with the declared total length and hash`);
    }
    const expected = closing ?? this.declared;
    if (expected === undefined) {
      throw fedgateError('INVALID_ARGUMENT', 'TRAILER_MISSING', `${what}: the stream ended after ${this.received} bytes without the trailer that declares total length and hash`);
    }
    if (this.received !== expected.totalLength) {
      throw fedgateError(
        'INVALID_ARGUMENT',
        'TRANSFER_UNDER_LENGTH',
        `${what}: received ${this.received} bytes but the total length is ${expected.totalLength}`,
      );
    }
    const digest = asBuffer(this.hash.digest());
    if (!digest.equals(expected.sha256)) {
      throw fedgateError(
        'DATA_LOSS',
        'HASH_MISMATCH',
        `${what}: SHA-256 of the ${this.received} received bytes is ${digest.toString('hex')}, expected ${expected.sha256.toString('hex')}`,
      );
    }
    return this.collect();
  }

  private collect(): Buffer {
    if (this.output !== undefined) return this.output.subarray(0, this.received);
    if (this.received === 0) return Buffer.alloc(0);
    if (this.pending.length === 1) return this.pending[0] as Buffer;
    // A copy loop rather than Buffer.concat: same single copy, into a buffer that may be `destination`.
    const payload = this.allocate(this.received);
    let position = 0;
    for (const chunk of this.pending) {
      chunk.copy(payload, position);
      position += chunk.length;
    }
    this.pending.length = 0;
    return payload;
  }

  private allocate(length: number): Buffer {
    const { destination } = this.options;
    return destination !== undefined && destination.length >= length ? destination.subarray(0, length) : Buffer.allocUnsafe(length);
  }

  private checkTotal(total: ExpectedTotal, field: string): ExpectedTotal {
    const { what, maxBytes } = this.options;
    if (!Number.isSafeInteger(total.totalLength) || total.totalLength < 0) {
      throw fedgateError('INVALID_ARGUMENT', 'INVALID_LENGTH', `${what}: ${field} total length must be a non-negative integer below 2^53; got ${String(total.totalLength)}`);
    }
    // Checked before a single byte is kept, so a hostile declaration costs nothing.
    if (total.totalLength > maxBytes) {
      throw fedgateError('RESOURCE_EXHAUSTED', 'TRANSFER_TOO_LARGE', `${what}: ${field} total length ${total.totalLength} exceeds the limit of ${maxBytes} bytes`);
    }
    if (total.totalLength < this.received) {
      throw fedgateError('INVALID_ARGUMENT', 'TRANSFER_OVER_LENGTH', `${what}: ${field} total length ${total.totalLength} is less than the ${this.received} bytes already received`);
    }
    return { totalLength: total.totalLength, sha256: checkSha256(total.sha256, `${what}: ${field} sha256`) };
  }
}
