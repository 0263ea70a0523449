import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkAssembler, FedgateError, MAX_CHUNK_BYTES, chunkPayload, sha256, type ExpectedTotal } from '../../../proto/index.js';

const payload = randomBytes(10_000);
const digest = sha256(payload);
const total: ExpectedTotal = { totalLength: payload.length, sha256: digest };

type Step = readonly ['chunk', number, Buffer] | readonly ['finish', ExpectedTotal?];

/** Replays `steps` into a fresh assembler; returns the payload or the FedgateError thrown. */
function replay(steps: readonly Step[], declared?: ExpectedTotal, maxBytes = 1_000_000): Buffer | FedgateError {
  try {
    const assembler = new ChunkAssembler({ maxBytes, what: 'test transfer' }, declared);
    let result: Buffer | undefined;
    for (const step of steps) {
      if (step[0] === 'chunk') assembler.accept(step[1], step[2]);
      else result = assembler.finish(step[1]);
    }
    if (result === undefined) throw new Error('steps must end with finish');
    return result;
  } catch (error) {
    if (error instanceof FedgateError) return error;
    throw error;
  }
}

const part = (start: number, end: number): Buffer => payload.subarray(start, end);

describe('chunkPayload', () => {
  it('splits into views that cover the payload in order, the last one flagged', () => {
    const chunks = [...chunkPayload(payload, 4096)];
    expect(chunks.map((chunk) => [chunk.offset, chunk.data.length, chunk.last])).toEqual([
      [0, 4096, false],
      [4096, 4096, false],
      [8192, 1808, true],
    ]);
    expect(chunks[1]?.data.buffer).toBe(payload.buffer);
    expect(Buffer.concat(chunks.map((chunk) => chunk.data)).equals(payload)).toBe(true);
  });

  it('yields one empty last chunk for an empty payload and rejects silly chunk sizes', () => {
    expect([...chunkPayload(new Uint8Array(0))]).toEqual([{ offset: 0, data: Buffer.alloc(0), last: true }]);
    for (const size of [0, 1.5, MAX_CHUNK_BYTES + 1]) {
      expect(() => [...chunkPayload(payload, size)]).toThrow(/chunkBytes must be an integer in \[1, 2097152\]/);
    }
  });
});

describe('ChunkAssembler', () => {
  it('reassembles a declared transfer into the destination it was given', () => {
    const destination = Buffer.alloc(20_000);
    const assembler = new ChunkAssembler({ maxBytes: 20_000, what: 'upload', destination }, total);
    for (const chunk of chunkPayload(payload, 3000)) assembler.accept(chunk.offset, chunk.data);
    const result = assembler.finish();
    expect(result.equals(payload)).toBe(true);
    expect(result.buffer).toBe(destination.buffer);
  });

  it('reassembles an undeclared transfer closed by its trailer, with or without a too-small destination', () => {
    for (const destination of [undefined, Buffer.alloc(5000), Buffer.alloc(10_000)]) {
      const assembler = new ChunkAssembler({ maxBytes: 20_000, what: 'download', ...(destination === undefined ? {} : { destination }) });
      for (const chunk of chunkPayload(payload, 3000)) assembler.accept(chunk.offset, Buffer.from(chunk.data));
      expect(assembler.finish(total).equals(payload)).toBe(true);
    }
  });

  it.each<[string, readonly Step[], ExpectedTotal | undefined, number | undefined, string, string]>([
    ['a declared length above the limit', [], total, 9_999, 'RESOURCE_EXHAUSTED', 'TRANSFER_TOO_LARGE'],
    ['an undeclared stream that grows past the limit', [['chunk', 0, part(0, 6000)], ['chunk', 6000, part(6000, 10_000)]], undefined, 8000, 'RESOURCE_EXHAUSTED', 'TRANSFER_TOO_LARGE'],
    ['a chunk running past the declared length', [['chunk', 0, payload], ['chunk', 10_000, Buffer.from([1])]], total, undefined, 'INVALID_ARGUMENT', 'TRANSFER_OVER_LENGTH'],
    ['a stream ending short of the declared length', [['chunk', 0, part(0, 9000)], ['finish']], total, undefined, 'INVALID_ARGUMENT', 'TRANSFER_UNDER_LENGTH'],
    ['a trailer announcing more than was sent', [['chunk', 0, part(0, 9000)], ['finish', { totalLength: 10_000, sha256: digest }]], undefined, undefined, 'INVALID_ARGUMENT', 'TRANSFER_UNDER_LENGTH'],
    ['a trailer announcing less than was sent', [['chunk', 0, payload], ['finish', { totalLength: 9000, sha256: digest }]], undefined, undefined, 'INVALID_ARGUMENT', 'TRANSFER_OVER_LENGTH'],
    ['a gap between chunks', [['chunk', 0, part(0, 4000)], ['chunk', 5000, part(5000, 10_000)]], total, undefined, 'INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK'],
    ['a repeated chunk', [['chunk', 0, part(0, 4000)], ['chunk', 0, part(0, 4000)]], total, undefined, 'INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK'],
    ['a first chunk not at offset 0', [['chunk', 1, part(1, 10_000)]], total, undefined, 'INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK'],
    ['an empty chunk', [['chunk', 0, Buffer.alloc(0)]], total, undefined, 'INVALID_ARGUMENT', 'EMPTY_CHUNK'],
    ['a wrong hash', [['chunk', 0, payload], ['finish']], { totalLength: 10_000, sha256: sha256(Buffer.from('other')) }, undefined, 'DATA_LOSS', 'HASH_MISMATCH'],
    ['one flipped byte', [['chunk', 0, Buffer.concat([part(0, 5000), Buffer.from([(payload[5000] ?? 0) ^ 1]), part(5001, 10_000)])], ['finish']], total, undefined, 'DATA_LOSS', 'HASH_MISMATCH'],
    ['a hash of the wrong size', [], { totalLength: 10_000, sha256: digest.subarray(0, 31) }, undefined, 'INVALID_ARGUMENT', 'INVALID_HASH'],
    ['a negative declared length', [], { totalLength: -1, sha256: digest }, undefined, 'INVALID_ARGUMENT', 'INVALID_LENGTH'],
    ['a declared length beyond 2^53', [], { totalLength: 2 ** 53 + 2, sha256: digest }, undefined, 'INVALID_ARGUMENT', 'INVALID_LENGTH'],
    ['an undeclared stream without trailer', [['chunk', 0, payload], ['finish']], undefined, undefined, 'INVALID_ARGUMENT', 'TRAILER_MISSING'],
    ['a trailer contradicting the declaration', [['chunk', 0, payload], ['finish', { totalLength: 10_000, sha256: sha256(Buffer.from('x')) }]], total, undefined, 'INVALID_ARGUMENT', 'TRAILER_MISMATCH'],
    ['a chunk after the end', [['chunk', 0, payload], ['finish'], ['chunk', 10_000, Buffer.from([1])]], total, undefined, 'INVALID_ARGUMENT', 'CHUNK_AFTER_END'],
  ])('rejects %s', (_case, steps, declared, maxBytes, code, reason) => {
    const result = replay(steps.length === 0 ? [['finish']] : steps, declared, maxBytes);
    expect(result).toBeInstanceOf(FedgateError);
    const error = result as FedgateError;
    expect([error.code, error.reason]).toEqual([code, reason]);
    expect(error.message).toMatch(/^test transfer: /);
  });

  it('names the limit, the declared and the received sizes in its messages', () => {
    expect((replay([['finish']], total, 9_999) as FedgateError).message).toBe(
      'test transfer: declared total length 10000 exceeds the limit of 9999 bytes',
    );
    expect((replay([['chunk', 0, part(0, 9000)], ['finish']], total) as FedgateError).message).toBe(
      'test transfer: received 9000 bytes but the total length is 10000',
    );
  });

  it('accepts an empty transfer', () => {
    const empty = { totalLength: 0, sha256: sha256(Buffer.alloc(0)) };
    expect(replay([['finish']], empty)).toEqual(Buffer.alloc(0));
    expect(replay([['finish', empty]])).toEqual(Buffer.alloc(0));
  });
});
