/**
 * The Federation gRPC service (proto/fedgate/v1/federation.proto) on the coordinator: the participant
 * Session stream (Hello, heartbeats, round messages), DownloadModel (any content-addressed blob the
 * round needs: task, model, aggregate, optimiser state), UploadMaskedInput and GetCommitRecords (the
 * ledger's commit records, for sites that verify their chain). Handlers only translate:
 * identity comes from the TLS session, protocol decisions from the federation and crypto/secagg, and
 * every error is mapped once by toGrpcStatus. Every stream handles 'error' and cancellation.
 */
import type { ServerDuplexStream, ServerReadableStream, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
import { commitRecordsAfter } from '../federation/commit-records.js';
import type { Federation } from '../federation/federation.js';
import { readCommitRecordsRequest, sendCommitRecords } from '../../proto/commit-records.js';
import type { SessionRegistry } from '../sessions/session-registry.js';
import { fedgateError } from '../../proto/errors.js';
import { peerIdentity } from '../../proto/identity.js';
import type { FederationHandlers } from '../../proto/loader.js';
import { decodeMaskedInputUpload } from '../../proto/masked-input-codec.js';
import { PROTOCOL_VERSION, type CommitRecordEntry, type CoordinatorMessage, type DownloadModelRequest__Output, type GetCommitRecordsRequest__Output, type ModelChunk, type ParticipantMessage__Output, type UploadAck, type UploadMaskedInputRequest__Output } from '../../proto/messages.js';
import { checkHelloFields } from '../../proto/hello-fields.js';
import { decodeParticipantMessage, decodeSiteHello, encodeCoordinatorMessage, type SiteHello } from '../../proto/session-codec.js';
import { failStream, toGrpcStatus, toServiceError } from '../../proto/status.js';
import { receiveUpload, sendModel, uploadAck } from '../../proto/transfer.js';

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
  /** Told the payload bytes of each completed transfer (metrics). @default none */
  readonly onTransfer?: (direction: 'received' | 'sent', rpc: string, bytes: number) => void;
}

export function federationHandlers(options: FederationServiceOptions): FederationHandlers {
  return {
    Session: (call) => handleSession(call, options),
    DownloadModel: (call) => void handleDownload(call, options),
    UploadMaskedInput: (call, callback) => void handleUpload(call, callback, options),
    GetCommitRecords: (call) => void handleCommitRecords(call, options),
  };
}

function handleSession(call: ServerDuplexStream<ParticipantMessage__Output, CoordinatorMessage>, options: FederationServiceOptions): void {
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
  call.on('data', (wire: ParticipantMessage__Output) => {
    try {
      if (!helloDone) {
        if (wire.payload !== 'hello') {
          throw fedgateError('FAILED_PRECONDITION', 'HELLO_REQUIRED', `the first message of a Session must be a Hello, got ${JSON.stringify(wire.payload ?? 'an empty message')}`);
        }
        if (options.allowList !== undefined && !options.allowList.includes(identity.siteId)) {
          throw fedgateError('PERMISSION_DENIED', 'NOT_ALLOWED', `site ${identity.siteId} is not on this federation's allow-list (participants.allow in coordinator.yaml)`);
        }
        const hello = decodeSiteHello(wire);
        checkHello(hello, options);
        const attached = registry.attach(
          { siteId: identity.siteId, serial: identity.serial, certificate: certificate ?? Buffer.alloc(0), hello, call, connectedAt: new Date(), acceptsTask: true },
          (siteId) => options.federation().inOpenRound(siteId),
        );
        if (attached.kind === 'refused') throw attached.error;
        helloDone = true;
        clearTimeout(helloTimer);
        if (attached.replaced !== undefined) {
          // Its own cleanup no longer finds it registered: report the dropout here, then end it.
          options.federation().siteDisconnected(identity.siteId);
          failStream(
            attached.replaced.call,
            fedgateError(
              'ALREADY_EXISTS',
              'SESSION_REPLACED',
              attached.why === 'renewal'
                ? `site ${identity.siteId} opened a session with a certificate issued later (serial ${identity.serial}); this session (serial ${attached.replaced.serial}) is closed`
                : `site ${identity.siteId} opened a new session with the same certificate; this one is closed`,
            ),
          );
        }
        call.write(
          encodeCoordinatorMessage({
            kind: 'hello_reply',
            reply: { protocolVersion: PROTOCOL_VERSION, fedgateVersion: options.fedgateVersion, federationId: options.federationId, siteId: identity.siteId, heartbeatIntervalMs: options.heartbeatIntervalMs },
          }),
        );
        heartbeat = setInterval(() => {
          call.write(encodeCoordinatorMessage({ kind: 'heartbeat', heartbeat: { sequence: ++sequence, sentAtUnixMs: Date.now() } }));
        }, options.heartbeatIntervalMs);
        heartbeat.unref();
        log.info({ fedgateVersion: hello.fedgateVersion, device: hello.capabilities?.device }, 'site connected');
        return;
      }
      if (wire.payload === 'hello') throw fedgateError('FAILED_PRECONDITION', 'DUPLICATE_HELLO', 'a Session sends its Hello once, first');
      routeSessionMessage(wire, identity.siteId, options, log);
    } catch (error) {
      fail(error);
    }
  });
}

/** A message after the Hello. A malformed or refused round message does not end the session: the site simply drops out of that stage. */
function routeSessionMessage(wire: ParticipantMessage__Output, siteId: string, options: FederationServiceOptions, log: Logger): void {
  try {
    const message = decodeParticipantMessage(wire);
    switch (message.kind) {
      case 'hello':
      case 'heartbeat':
      case 'training_progress':
        return;
      case 'refusal':
      case 'stage':
        options.federation().receive(siteId, message);
        return;
    }
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    log.warn({ payload: wire.payload, reason: grpcStatus.reason, detail: grpcStatus.details }, 'round message refused');
  }
}

function checkHello(hello: SiteHello, options: FederationServiceOptions): void {
  // Its free text reaches logs, the Admin API and operators' terminals: refused unless it is plain.
  checkHelloFields(hello);
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

async function handleDownload(call: ServerWritableStream<DownloadModelRequest__Output, ModelChunk>, options: FederationServiceOptions): Promise<void> {
  call.on('error', () => undefined);
  try {
    const hash = Buffer.from(call.request.modelHash ?? []);
    if (hash.length !== 32) throw fedgateError('INVALID_ARGUMENT', 'BAD_HASH', `modelHash must be a 32-byte SHA-256 digest, got ${hash.length} bytes`);
    const store = options.federation().blobs;
    const hex = hash.toString('hex');
    if (!(await store.has(hex))) throw fedgateError('NOT_FOUND', 'NO_SUCH_BLOB', `the coordinator holds no model or round artefact with SHA-256 ${hex}`);
    const blob = await store.get(hex);
    await sendModel(call, blob, { modelSha256: hash });
    options.onTransfer?.('sent', 'DownloadModel', blob.byteLength);
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) options.logger.error({ err: error }, 'download failed unexpectedly');
    failStream(call, error);
  }
}

async function handleCommitRecords(call: ServerWritableStream<GetCommitRecordsRequest__Output, CommitRecordEntry>, options: FederationServiceOptions): Promise<void> {
  call.on('error', () => undefined);
  try {
    const { afterRoundCounter, maxRecords } = readCommitRecordsRequest(call.request);
    await sendCommitRecords(call, commitRecordsAfter(options.federation().ledgerRecords, afterRoundCounter, maxRecords));
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) options.logger.error({ err: error }, 'serving commit records failed unexpectedly');
    failStream(call, error);
  }
}

async function handleUpload(call: ServerReadableStream<UploadMaskedInputRequest__Output, UploadAck>, callback: sendUnaryData<UploadAck>, options: FederationServiceOptions): Promise<void> {
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
    const message = decodeMaskedInputUpload(upload, options.expectedUploadBytes());
    options.federation().receive(identity.siteId, { kind: 'stage', message });
    options.onTransfer?.('received', 'UploadMaskedInput', upload.payload.length);
    options.logger.debug({ site: identity.siteId, round: toHex(message.roundId), bytes: upload.payload.length }, 'masked input received');
    callback(null, uploadAck(upload));
  } catch (error) {
    const grpcStatus = toGrpcStatus(error);
    if (grpcStatus.unexpected) options.logger.error({ err: error, site: identity.siteId }, 'upload failed unexpectedly');
    else options.logger.warn({ site: identity.siteId, reason: grpcStatus.reason, detail: grpcStatus.details }, 'upload refused');
    callback(toServiceError(error));
  }
}
