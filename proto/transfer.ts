/**
 * The two chunked RPCs end to end, for both sides: the coordinator serves `DownloadModel` and receives
 * `UploadMaskedInput`; the participant calls them. Every stream handles errors and cancellation (an
 * unhandled stream 'error' is an uncaught exception, grpc-node #531), writes respect back-pressure,
 * and every received byte is checked by a ChunkAssembler before it is returned.
 */
import { once, type EventEmitter } from 'node:events';
import type { CallOptions, ServerReadableStream, ServerWritableStream } from '@grpc/grpc-js';
import { ChunkAssembler, DEFAULT_CHUNK_BYTES, checkSha256, chunkPayload, sha256 } from './chunking.js';
import { FedgateError, fedgateError } from './errors.js';
import type { FederationClient } from './loader.js';
import type {
  ModelChunk,
  ModelChunk__Output,
  RoundId__Output,
  RoundStage__Output,
  UploadAck,
  UploadAck__Output,
  UploadHeader,
  UploadHeader__Output,
  UploadMaskedInputRequest,
  UploadMaskedInputRequest__Output,
} from './messages.js';
import { isRoundStage } from './round-stage.js';
import { fromGrpcError } from './status.js';

export interface SendOptions {
  /** @default DEFAULT_CHUNK_BYTES (1 MiB) */
  readonly chunkBytes?: number;
}

// ----- DownloadModel ------------------------------------------------------------------------------

/**
 * Coordinator: streams `model` to the caller and ends the call. The trailer (total length, SHA-256)
 * rides on the last chunk. Pass `modelSha256` when known (models are stored by hash) to skip hashing.
 * Resolves early, without error, if the client cancels.
 */
export async function sendModel(
  // Any request: Admin.GetModel streams the same framing as Federation.DownloadModel, and nothing of the request is read here.
  call: ServerWritableStream<unknown, ModelChunk>,
  model: Uint8Array,
  options: SendOptions & { readonly modelSha256?: Buffer } = {},
): Promise<void> {
  const trailer = { totalLength: model.byteLength, sha256: options.modelSha256 ?? sha256(model) };
  let cancelled = call.cancelled;
  const onCancelled = (): void => {
    cancelled = true;
  };
  call.once('cancelled', onCancelled);
  try {
    for (const chunk of chunkPayload(model, options.chunkBytes ?? DEFAULT_CHUNK_BYTES)) {
      if (cancelled) return;
      const message: ModelChunk = { offset: chunk.offset, data: chunk.data, trailer: chunk.last ? trailer : null };
      if (!call.write(message)) await waitForDrain(call, ['cancelled', 'close', 'error']);
    }
    if (!cancelled) call.end();
  } finally {
    call.off('cancelled', onCancelled);
  }
}

export interface DownloadOptions {
  /** Largest model accepted; the download fails with RESOURCE_EXHAUSTED as soon as it is exceeded. */
  readonly maxBytes: number;
  /** Reused output buffer (e.g. the previous round's model); the result is then a view of it. */
  readonly destination?: Buffer;
  readonly callOptions?: CallOptions;
}

/** Participant: downloads the model with `modelHash` and returns it after checking length and hash. */
export async function downloadModel(client: FederationClient, modelHash: Buffer, options: DownloadOptions): Promise<Buffer> {
  const hash = checkSha256(modelHash, 'modelHash');
  const callName = `DownloadModel(model ${hash.toString('hex').slice(0, 16)}...)`;
  const assembler = new ChunkAssembler({
    maxBytes: options.maxBytes,
    what: `download of model ${hash.toString('hex')}`,
    ...(options.destination === undefined ? {} : { destination: options.destination }),
  });
  const call = client.downloadModel({ modelHash: hash }, options.callOptions ?? {});
  // Errors surface through the iteration below; this keeps a late one (after cancel) from being unhandled.
  call.on('error', () => undefined);
  let model: Buffer | undefined;
  try {
    for await (const chunk of call as AsyncIterable<ModelChunk__Output>) {
      if (model !== undefined) {
        throw fedgateError('INVALID_ARGUMENT', 'CHUNK_AFTER_END', `${callName}: a chunk at offset ${chunk.offset} followed the trailer`);
      }
      if (chunk.data.length > 0 || chunk.trailer === null) {
        assembler.accept(chunk.offset, chunk.data);
      } else if (chunk.offset !== assembler.receivedBytes) {
        throw fedgateError('INVALID_ARGUMENT', 'OUT_OF_ORDER_CHUNK', `${callName}: trailer offset must be ${assembler.receivedBytes}; got ${chunk.offset}`);
      }
      if (chunk.trailer !== null) {
        if (!checkSha256(chunk.trailer.sha256, 'trailer.sha256').equals(hash)) {
          throw fedgateError('DATA_LOSS', 'WRONG_MODEL', `${callName}: the trailer announces SHA-256 ${chunk.trailer.sha256.toString('hex')}, not the model requested`);
        }
        model = assembler.finish(chunk.trailer);
      }
    }
  } catch (error) {
    call.cancel();
    throw error instanceof FedgateError ? error : fromGrpcError(error, callName);
  }
  return model ?? assembler.finish();
}

// ----- UploadMaskedInput --------------------------------------------------------------------------

export interface UploadTarget {
  readonly roundId: RoundId__Output;
  readonly stage: RoundStage__Output;
}

export interface UploadOptions extends SendOptions {
  /** SHA-256 of `payload` when already computed (the participant signs it before uploading). */
  readonly payloadSha256?: Buffer;
  /** The MaskedInput closing that travels in the header (required by the coordinator for masked inputs). */
  readonly closing?: { readonly survivorDigest: Buffer; readonly signature: Buffer };
  readonly callOptions?: CallOptions;
}

/** Participant: uploads `payload` (header first, then chunks) and resolves with the coordinator's ack. */
export async function uploadMaskedInput(
  client: FederationClient,
  target: UploadTarget,
  payload: Uint8Array,
  options: UploadOptions = {},
): Promise<UploadAck__Output> {
  const callName = `UploadMaskedInput(round ${target.roundId.counter}, ${payload.byteLength} bytes)`;
  let settle!: { resolve: (ack: UploadAck__Output) => void; reject: (error: unknown) => void };
  const response = new Promise<UploadAck__Output>((resolve, reject) => {
    settle = { resolve, reject };
  });
  let finished = false;
  const call = client.uploadMaskedInput(options.callOptions ?? {}, (error, ack) => {
    finished = true;
    if (error !== null || ack === undefined) settle.reject(error ?? new Error('no response'));
    else settle.resolve(ack);
  });
  // The callback reports every failure; this listener only keeps 'error' from being unhandled.
  call.on('error', () => undefined);
  const header: UploadHeader = {
    roundId: target.roundId,
    stage: target.stage,
    totalLength: payload.byteLength,
    sha256: options.payloadSha256 === undefined ? sha256(payload) : checkSha256(options.payloadSha256, 'payloadSha256'),
    survivorDigest: options.closing?.survivorDigest ?? Buffer.alloc(0),
    signature: options.closing?.signature ?? Buffer.alloc(0),
  };
  const write = async (message: UploadMaskedInputRequest): Promise<void> => {
    // After an early status (e.g. RESOURCE_EXHAUSTED on the header) 'drain' may never come: the
    // call's 'status' event ends the wait instead.
    if (!call.write(message) && !finished) await waitForDrain(call, ['status', 'close']);
  };
  await write({ part: 'header', header });
  for (const chunk of chunkPayload(payload, options.chunkBytes ?? DEFAULT_CHUNK_BYTES)) {
    if (finished) break;
    if (chunk.data.length > 0) await write({ part: 'chunk', chunk: { offset: chunk.offset, data: chunk.data } });
  }
  if (!finished) call.end();
  try {
    return await response;
  } catch (error) {
    throw fromGrpcError(error, callName);
  }
}

export interface ReceivedUpload {
  readonly header: UploadHeader__Output & { readonly roundId: RoundId__Output };
  readonly payload: Buffer;
}

export interface ReceiveUploadOptions {
  /** Limit for this upload, or a function deciding it from the header (e.g. the round's vector size). */
  readonly maxBytes: number | ((header: UploadHeader__Output) => number);
  /** Reused output buffer, or a function choosing one from the header; the payload is then a view of it. */
  readonly destination?: Buffer | ((header: UploadHeader__Output) => Buffer | undefined);
}

/**
 * Coordinator: reads a whole upload (header, then chunks in order), checking each message as it
 * arrives, and returns header and payload once length and hash match. Throws a FedgateError (map it
 * with toGrpcStatus) on any malformed stream, and FedgateError CANCELLED if the client goes away.
 */
export async function receiveUpload(
  call: ServerReadableStream<UploadMaskedInputRequest__Output, UploadAck>,
  options: ReceiveUploadOptions,
): Promise<ReceivedUpload> {
  let header: ReceivedUpload['header'] | undefined;
  let assembler: ChunkAssembler | undefined;
  const cancelled = once(call, 'cancelled').then(() => {
    throw fedgateError('CANCELLED', 'CLIENT_CANCELLED', 'the client cancelled the upload');
  });
  cancelled.catch(() => undefined);
  const consume = async (): Promise<Buffer> => {
    for await (const message of call as AsyncIterable<UploadMaskedInputRequest__Output>) {
      if (message.part === 'header') {
        if (header !== undefined) throw fedgateError('INVALID_ARGUMENT', 'DUPLICATE_HEADER', 'upload: a second header arrived; the header comes once, first');
        header = checkUploadHeader(message.header);
        const maxBytes = typeof options.maxBytes === 'function' ? options.maxBytes(header) : options.maxBytes;
        const destination = typeof options.destination === 'function' ? options.destination(header) : options.destination;
        assembler = new ChunkAssembler(
          { maxBytes, what: `upload for round ${header.roundId.counter} (${header.stage})`, ...(destination === undefined ? {} : { destination }) },
          { totalLength: header.totalLength, sha256: header.sha256 },
        );
      } else if (message.part === 'chunk') {
        if (assembler === undefined) throw fedgateError('INVALID_ARGUMENT', 'HEADER_MISSING', 'upload: a chunk arrived before the header');
        const chunk = message.chunk;
        if (chunk === null || chunk === undefined) throw fedgateError('INVALID_ARGUMENT', 'EMPTY_MESSAGE', 'upload: a message naming a chunk without one');
        assembler.accept(chunk.offset, chunk.data);
      } else {
        throw fedgateError('INVALID_ARGUMENT', 'EMPTY_MESSAGE', 'upload: a message with neither header nor chunk');
      }
    }
    if (assembler === undefined) throw fedgateError('INVALID_ARGUMENT', 'HEADER_MISSING', 'upload: the stream ended without a header');
    return assembler.finish();
  };
  let payload: Buffer;
  try {
    payload = await Promise.race([consume(), cancelled]);
  } catch (error) {
    // A cancelled call also ends the request stream, which reads as a short upload; say what happened.
    if (call.cancelled && !(error instanceof FedgateError && error.code === 'CANCELLED')) {
      throw new FedgateError('CANCELLED', 'the client cancelled the upload', { reason: 'CLIENT_CANCELLED', cause: error });
    }
    throw error;
  }
  return { header: header as ReceivedUpload['header'], payload };
}

/** The ack a coordinator returns for a stored upload. */
export function uploadAck(upload: ReceivedUpload): UploadAck {
  return { roundId: upload.header.roundId, receivedLength: upload.payload.length, sha256: upload.header.sha256 };
}

function checkUploadHeader(header: UploadHeader__Output | null | undefined): ReceivedUpload['header'] {
  if (header === null || header === undefined) throw fedgateError('INVALID_ARGUMENT', 'HEADER_MISSING', 'upload: the header member of the first message is not set');
  if (header.roundId === null) throw fedgateError('INVALID_ARGUMENT', 'ROUND_ID_MISSING', 'upload header: roundId is required');
  if (!isRoundStage(header.stage)) {
    throw fedgateError('INVALID_ARGUMENT', 'INVALID_STAGE', `upload header: stage must be a round stage; got ${JSON.stringify(header.stage)}`);
  }
  checkSha256(header.sha256, 'upload header sha256');
  return { ...header, roundId: header.roundId };
}

/**
 * Resolves on the stream's next 'drain' or any of `stopEvents`, then removes its listeners: a wait
 * per chunk that left a listener behind would pile up thousands of them on a long transfer.
 */
function waitForDrain(stream: EventEmitter, stopEvents: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const events = ['drain', ...stopEvents];
    const done = (): void => {
      for (const event of events) stream.off(event, done);
      resolve();
    };
    for (const event of events) stream.on(event, done);
  });
}
