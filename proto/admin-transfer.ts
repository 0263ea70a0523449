/**
 * Client side of Admin.GetModel: reads a stream of ModelChunk messages (the framing of
 * Federation.DownloadModel, transfer.ts) into one buffer, checking order, size and the trailer's length
 * and SHA-256 before returning a byte. The server side is transfer.ts `sendModel`.
 */
import type { ClientReadableStream, Metadata } from '@grpc/grpc-js';
import { MODEL_HASH_METADATA_KEY, MODEL_ROUND_METADATA_KEY } from './admin-messages.js';
import { ChunkAssembler, checkSha256 } from './chunking.js';
import { FedgateError, fedgateError } from './errors.js';
import type { ModelChunk__Output } from './messages.js';
import { fromGrpcError } from './status.js';

export interface ReceivedModel {
  readonly bytes: Buffer;
  /** SHA-256 from the trailer, verified against the bytes. */
  readonly sha256: Buffer;
  /** From the response metadata (admin.proto): the round and model_hash the server resolved. */
  readonly round: number | undefined;
  readonly modelHash: string | undefined;
}

export interface ReceiveModelOptions {
  /** Largest model accepted; RESOURCE_EXHAUSTED as soon as it is exceeded. */
  readonly maxBytes: number;
  /** Names the call in errors, e.g. "GetModel(round 3)". */
  readonly callName: string;
  /** When set, the trailer must announce this SHA-256 (e.g. the onnx_sha256 ListRounds reported). */
  readonly expectedSha256?: Buffer;
}

export async function receiveModelStream(call: ClientReadableStream<ModelChunk__Output>, options: ReceiveModelOptions): Promise<ReceivedModel> {
  const { callName } = options;
  const assembler = new ChunkAssembler({ maxBytes: options.maxBytes, what: callName });
  let metadata: Metadata | undefined;
  call.on('metadata', (received: Metadata) => {
    metadata = received;
  });
  // Errors surface through the iteration below; this keeps a late one (after cancel) from being unhandled.
  call.on('error', () => undefined);
  let result: { bytes: Buffer; sha256: Buffer } | undefined;
  try {
    for await (const chunk of call as AsyncIterable<ModelChunk__Output>) {
      if (result !== undefined) throw fedgateError('INVALID_ARGUMENT', 'CHUNK_AFTER_END', `${callName}: a chunk at offset ${chunk.offset} followed the trailer`);
      if (chunk.data.length > 0) assembler.accept(chunk.offset, chunk.data);
      else if (chunk.trailer === null || chunk.offset !== assembler.receivedBytes) {
        throw fedgateError('INVALID_ARGUMENT', 'EMPTY_CHUNK', `${callName}: a chunk without data must be the trailer at offset ${assembler.receivedBytes}; got offset ${chunk.offset}`);
      }
      if (chunk.trailer !== null) {
        const sha256 = checkSha256(chunk.trailer.sha256, `${callName}: trailer.sha256`);
        if (options.expectedSha256 !== undefined && !sha256.equals(options.expectedSha256)) {
          throw fedgateError('DATA_LOSS', 'WRONG_MODEL', `${callName}: the trailer announces SHA-256 ${sha256.toString('hex')}, expected ${options.expectedSha256.toString('hex')}`);
        }
        result = { bytes: assembler.finish(chunk.trailer), sha256 };
      }
    }
  } catch (error) {
    call.cancel();
    throw error instanceof FedgateError ? error : fromGrpcError(error, callName);
  }
  if (result === undefined) {
    throw fedgateError('INVALID_ARGUMENT', 'TRAILER_MISSING', `${callName}: the stream ended after ${assembler.receivedBytes} bytes without the trailer that declares total length and hash`);
  }
  const roundText = metadata?.get(MODEL_ROUND_METADATA_KEY)[0];
  const hashText = metadata?.get(MODEL_HASH_METADATA_KEY)[0];
  const round = typeof roundText === 'string' && /^\d+$/.test(roundText) ? Number(roundText) : undefined;
  const modelHash = typeof hashText === 'string' && /^[0-9a-f]{64}$/.test(hashText) ? hashText : undefined;
  return { ...result, round, modelHash };
}
