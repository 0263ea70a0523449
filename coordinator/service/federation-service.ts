/**
 * The Federation gRPC service (proto/fedgate/v1/federation.proto) on the coordinator: the participant
 * Session stream (Hello, heartbeats, round messages), DownloadModel (any content-addressed blob the
 * round needs: task, model, aggregate, optimiser state) and UploadMaskedInput. Handlers only translate:
 * identity comes from the TLS session, protocol decisions from the federation and crypto/secagg, and
 * every error is mapped once by toGrpcStatus. Every stream handles 'error' and cancellation.
 */
import type { ServerDuplexStream, ServerReadableStream, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
import type { MaskedInputMessage } from '../../crypto/secagg/messages.js';
import type { Federation } from '../federation/federation.js';
import { fedgateError } from '../../proto/errors.js';
import { peerIdentity } from '../../proto/identity.js';
import type { FederationHandlers } from '../../proto/loader.js';
import type { CoordinatorMessage, DownloadModelRequest, Hello, ModelChunk, ParticipantMessage, UploadAck, UploadMaskedInputRequest } from '../../proto/messages.js';
import { PROTOCOL_VERSION } from '../../proto/messages.js';
import { decodeClientStage } from '../../proto/round-codec.js';
import { roundIdFromWire } from '../../proto/round-id.js';
import { failStream, toGrpcStatus, toServiceError } from '../../proto/status.js';
import { receiveUpload, sendModel, uploadAck } from '../../proto/transfer.js';
import type { SessionRegistry } from './session-registry.js';

export interface FederationServiceOptions {
  readonly federationId: string;
  readonly fedgateVersion: string;
  readonly taskHash: string;
  /** Highest opset the task's graphs need; a site whose runtime is older is refused at Hello. */
  readonly requiredOpset: number;
  /** Bytes of the largest model a site must accept. */
  readonly modelBytes: number;
  readonly heartbeatIntervalMs: number;
  /** Bytes of one masked input of the open round (d + 4 uint32), or undefined between rounds. */
  readonly expectedUploadBytes: () => number | undefined;
  readonly federation: () => Federation;
  readonly registry: SessionRegistry;
  readonly logger: Logger;
  /** When set, only these site ids may join (others are refused at Hello). */
  readonly allowList?: readonly string[];
  /** How long a new Session may take to send its Hello. @default 10 s */
  readonly helloTimeoutMs?: number;
}

export function federationHandlers(options: FederationServiceOptions): FederationHandlers {
  return {
    Session: (call) => handleSession(call, options),
    DownloadModel: (call) => void handleDownload(call, options),
    UploadMaskedInput: (call, callback) => void handleUpload(call, callback, options),
  };
}

function handleSession(call: ServerDuplexStream<ParticipantMessage, CoordinatorMessage>, options: FederationServiceOptions): void {
  const { logger, registry } = options;
  const identity = peerIdentity(call);
  const log = logger.child({ site: identity.siteId });
  const certificate = call.getAuthContext()?.sslPeerCertificate?.raw;
  let helloDone = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let sequence = 0;
  const fail = (error: unknown): void => {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) log.error({ err: error }, 'session failed unexpectedly');
    else log.warn({ reason: grpcStatus.reason, detail: grpcStatus.details }, 'session refused');
    // failStream, not call.destroy: a destroyed stream sends no status, and the site would wait forever.
    failStream(call, error);
  };
  const helloTimer = setTimeout(() => {
    if (!helloDone) fail(fedgateError('DEADLINE_EXCEEDED', 'HELLO_TIMEOUT', 'the first message of a Session must be a Hello, sent within 10 s of opening it'));
  }, options.helloTimeoutMs ?? 10_000);
  const cleanup = (why: string): void => {
    clearTimeout(helloTimer);
    clearInterval(heartbeat);
    if (registry.detach(identity.siteId, call)) {
      log.info({ why }, 'site disconnected');
      options.federation().siteDisconnected(identity.siteId);
    }
  };
  call.on('error', (error) => cleanup(`stream error: ${error.message}`));
  call.on('cancelled', () => cleanup('cancelled'));
  call.on('end', () => {
    cleanup('ended by the site');
    call.end();
  });
  call.on('data', (message: ParticipantMessage) => {
    try {
      if (!helloDone) {
        if (message.payload !== 'hello') {
          throw fedgateError('FAILED_PRECONDITION', 'HELLO_REQUIRED', `the first message of a Session must be a Hello, got ${JSON.stringify(message.payload ?? 'an empty message')}`);
        }
        if (options.allowList !== undefined && !options.allowList.includes(identity.siteId)) {
          throw fedgateError('PERMISSION_DENIED', 'NOT_ALLOWED', `site ${identity.siteId} is not on this federation's allow-list (participants.allow in coordinator.yaml)`);
        }
        checkHello(message.hello, options);
        helloDone = true;
        clearTimeout(helloTimer);
        registry.attach({
          siteId: identity.siteId,
          serial: identity.serial,
          certificate: certificate ?? Buffer.alloc(0),
          hello: message.hello,
          call,
          connectedAt: new Date(),
          acceptsTask: true,
        });
        call.write({ payload: 'helloReply', helloReply: { protocolVersion: PROTOCOL_VERSION, fedgateVersion: options.fedgateVersion, federationId: options.federationId, siteId: identity.siteId, heartbeatIntervalMs: options.heartbeatIntervalMs } });
        heartbeat = setInterval(() => {
          call.write({ payload: 'heartbeat', heartbeat: { sequence: ++sequence, sentAtUnixMs: Date.now() } });
        }, options.heartbeatIntervalMs);
        heartbeat.unref();
        log.info({ fedgateVersion: message.hello.fedgateVersion, device: message.hello.capabilities?.device }, 'site connected');
        return;
      }
      routeSessionMessage(message, identity.siteId, options, log);
    } catch (error) {
      fail(error);
    }
  });
}

function routeSessionMessage(message: ParticipantMessage, siteId: string, options: FederationServiceOptions, log: Logger): void {
  const payload = (message as { payload?: string }).payload;
  if (payload === 'heartbeat') return;
  if (payload === 'hello') throw fedgateError('FAILED_PRECONDITION', 'DUPLICATE_HELLO', 'a Session sends its Hello once, first');
  const federation = options.federation();
  try {
    if (payload === 'roundRefusal' || payload === 'trainingProgress') {
      const body = (message as unknown as Record<string, { roundId?: Buffer; reason?: string; message?: string; step?: number; stepsTotal?: number }>)[payload];
      if (payload === 'trainingProgress') return;
      federation.receive(siteId, { kind: 'refusal', roundId: new Uint8Array(body?.roundId ?? []), reason: String(body?.reason ?? ''), message: String(body?.message ?? '') });
      return;
    }
    federation.receive(siteId, { kind: 'stage', message: decodeClientStage(message as unknown as { payload?: string } & Record<string, unknown>) });
  } catch (error) {
    // A refused round message does not end the session: the site simply drops out of that stage.
    const grpcStatus = toGrpcStatus(error);
    log.warn({ payload, reason: grpcStatus.reason, detail: grpcStatus.details }, 'round message refused');
  }
}

function checkHello(hello: Hello, options: FederationServiceOptions): void {
  if (hello.protocolVersion !== PROTOCOL_VERSION) {
    throw fedgateError('FAILED_PRECONDITION', 'PROTOCOL_VERSION', `protocol version ${hello.protocolVersion} is not supported: this coordinator speaks version ${PROTOCOL_VERSION} (fedgate ${options.fedgateVersion}); upgrade the participant`);
  }
  const capabilities = hello.capabilities;
  if (capabilities === null) throw fedgateError('INVALID_ARGUMENT', 'CAPABILITIES_MISSING', 'Hello.capabilities is required');
  const accepted = capabilities.acceptedTaskHashes.map((hash) => Buffer.from(hash).toString('hex'));
  if (!accepted.includes(options.taskHash)) {
    throw fedgateError(
      'FAILED_PRECONDITION',
      'TASK_NOT_ACCEPTED',
      `this federation trains task ${options.taskHash}, which the site has not pinned (it accepts ${accepted.length === 0 ? 'no task' : accepted.join(', ')}): add the hash to accepted_tasks in site.yaml after reviewing the task`,
    );
  }
  if (capabilities.onnxOpset < options.requiredOpset) {
    throw fedgateError('FAILED_PRECONDITION', 'OPSET_TOO_OLD', `the task needs ONNX opset ${options.requiredOpset}, the site's runtime supports ${capabilities.onnxOpset}: upgrade onnxruntime-node on the site`);
  }
  if (capabilities.maxModelBytes < options.modelBytes) {
    throw fedgateError('FAILED_PRECONDITION', 'MODEL_TOO_LARGE', `the model is ${options.modelBytes} bytes, the site accepts at most ${capabilities.maxModelBytes}: raise max_model_bytes in site.yaml`);
  }
}

async function handleDownload(call: ServerWritableStream<DownloadModelRequest, ModelChunk>, options: FederationServiceOptions): Promise<void> {
  call.on('error', () => undefined);
  try {
    const hash = Buffer.from(call.request.modelHash ?? []);
    if (hash.length !== 32) throw fedgateError('INVALID_ARGUMENT', 'BAD_HASH', `modelHash must be a 32-byte SHA-256 digest, got ${hash.length} bytes`);
    const store = options.federation().blobs;
    const hex = hash.toString('hex');
    if (!(await store.has(hex))) throw fedgateError('NOT_FOUND', 'NO_SUCH_BLOB', `the coordinator holds no model or round artefact with SHA-256 ${hex}`);
    await sendModel(call, await store.get(hex), { modelSha256: hash });
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) options.logger.error({ err: error }, 'download failed unexpectedly');
    failStream(call, error);
  }
}

async function handleUpload(call: ServerReadableStream<UploadMaskedInputRequest, UploadAck>, callback: sendUnaryData<UploadAck>, options: FederationServiceOptions): Promise<void> {
  call.on('error', () => undefined);
  const identity = peerIdentity(call);
  try {
    const upload = await receiveUpload(call, {
      maxBytes: () => {
        const expected = options.expectedUploadBytes();
        if (expected === undefined) throw fedgateError('FAILED_PRECONDITION', 'NO_OPEN_ROUND', 'no round is accepting masked inputs now');
        return expected;
      },
    });
    const header = upload.header;
    if (header.stage !== 'ROUND_STAGE_MASKED_INPUT') throw fedgateError('INVALID_ARGUMENT', 'WRONG_STAGE', `uploads carry masked inputs only; got stage ${header.stage}`);
    const expected = options.expectedUploadBytes();
    if (expected === undefined || upload.payload.length !== expected) {
      throw fedgateError('INVALID_ARGUMENT', 'WRONG_LENGTH', `a masked input of this round is ${String(expected)} bytes; got ${upload.payload.length}`);
    }
    const vector = new Uint32Array(upload.payload.length / 4);
    new Uint8Array(vector.buffer).set(upload.payload);
    const message: MaskedInputMessage = {
      stage: 'masked_input',
      roundId: roundIdFromWire(header.roundId),
      maskedVector: vector,
      survivorDigest: new Uint8Array(header.survivorDigest ?? []),
      uploadHash: new Uint8Array(header.sha256),
      signature: new Uint8Array(header.signature ?? []),
    };
    options.federation().receive(identity.siteId, { kind: 'stage', message });
    options.logger.debug({ site: identity.siteId, round: toHex(message.roundId), bytes: upload.payload.length }, 'masked input received');
    callback(null, uploadAck(upload));
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) options.logger.error({ err: error, site: identity.siteId }, 'upload failed unexpectedly');
    else options.logger.warn({ site: identity.siteId, reason: grpcStatus.reason, detail: grpcStatus.details }, 'upload refused');
    callback(toServiceError(error));
  }
}
