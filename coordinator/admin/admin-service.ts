/**
 * The Admin gRPC service (proto/fedgate/v1/admin.proto) on the coordinator. Handlers only translate:
 * who may call is decided by AccessControl before a handler runs (operators only), what is reported
 * comes from the federation, its ledger and the session registry, and every error is mapped once by
 * toGrpcStatus. Streams handle 'error' and cancellation.
 */
import { Metadata, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Federation } from '../federation/federation.js';
import type { SessionRegistry } from '../sessions/session-registry.js';
import type { AdminHandlers } from '../../proto/admin-loader.js';
import {
  MODEL_HASH_METADATA_KEY,
  MODEL_ROUND_METADATA_KEY,
  type GetModelRequest,
  type GetStatusResponse,
  type ListRoundsResponse,
  type RevokeParticipantRequest,
  type RevokeParticipantResponse,
} from '../../proto/admin-messages.js';
import { fedgateError } from '../../proto/errors.js';
import { peerIdentity } from '../../proto/identity.js';
import type { ModelChunk } from '../../proto/messages.js';
import { failStream, toGrpcStatus, toServiceError } from '../../proto/status.js';
import { sendModel } from '../../proto/transfer.js';
import { committedRoundMessage, hashBytes, modelEvaluationMessage, participantMessage, roundIdFromHex } from './admin-wire.js';
import type { ModelExports } from './model-exports.js';
import type { RevocationRegistry } from './revocation-registry.js';
import type { RevocationService, RevocationTarget } from './revocation-service.js';
import type { RoundCatalog } from './round-catalog.js';
import type { RoundWatch } from './round-watch.js';
import type { ParticipantLevelAccount } from './participant-level-privacy.js';
import { recordLevelPrivacyMessage, statusDelta, type TaskPrivacy } from './task-privacy.js';

export interface AdminServiceContext {
  readonly federationId: string;
  readonly fedgateVersion: string;
  readonly taskHash: string;
  readonly roundsConfigured: number;
  readonly minParticipants: number;
  readonly secureAggregation: boolean;
  readonly startedAt: Date;
  readonly federation: Federation;
  readonly sessions: SessionRegistry;
  readonly catalog: RoundCatalog;
  readonly exports: ModelExports;
  readonly watch: RoundWatch;
  readonly revocations: RevocationRegistry;
  readonly revocationService: RevocationService;
  /** The task's record-level DP (GetStatus reports its epsilon); undefined for a task without it. */
  readonly privacy?: TaskPrivacy;
  /** The task's participant-level DP (GetStatus composes its committed rounds' curves); undefined without. */
  readonly participantLevel?: ParticipantLevelAccount;
  readonly logger: Logger;
}

export function adminHandlers(context: AdminServiceContext): AdminHandlers {
  const unary =
    <Request, Response>(name: string, handler: (call: ServerUnaryCall<Request, Response>) => Promise<Response> | Response) =>
    (call: ServerUnaryCall<Request, Response>, callback: sendUnaryData<Response>): void => {
      Promise.resolve()
        .then(() => handler(call))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            report(context.logger, name, error);
            callback(toServiceError(error));
          },
        );
    };
  return {
    GetStatus: unary('GetStatus', (call) => status(context, call.request.privacyDelta)),
    ListParticipants: unary('ListParticipants', () => ({
      participants: [...context.sessions.connected()].sort((a, b) => (a.siteId < b.siteId ? -1 : a.siteId > b.siteId ? 1 : 0)).map(participantMessage),
    })),
    ListRounds: unary('ListRounds', (call) => listRounds(context, call.request.pageSize, call.request.pageToken, call.request.newestFirst)),
    WatchRounds: (call) => {
      call.on('error', () => undefined);
      context.watch.watch(call, peerIdentity(call));
    },
    GetModel: (call) => void getModel(call, context),
    RevokeParticipant: unary('RevokeParticipant', (call) => revoke(context, call)),
  };
}

async function status(context: AdminServiceContext, privacyDelta: number): Promise<GetStatusResponse> {
  const { federation } = context;
  // Checked first: a bad delta is refused before any work.
  const recordLevelPrivacy = recordLevelPrivacyMessage(context.privacy, federation.committedRounds, privacyDelta);
  const participantLevelPrivacy = context.participantLevel === undefined ? null : await context.participantLevel.message(statusDelta(privacyDelta));
  const modelHash = federation.currentModelHash;
  const committedRounds = federation.committedRounds;
  const onnxSha256 = await context.exports.onnxSha256(modelHash);
  const open = context.watch.openRound;
  const finalEvaluation = federation.finalEvaluation;
  return {
    federationId: context.federationId,
    taskHash: hashBytes(context.taskHash),
    committedRounds,
    roundsConfigured: context.roundsConfigured,
    currentModelHash: hashBytes(modelHash),
    currentModelOnnxSha256: hashBytes(onnxSha256),
    connectedParticipants: context.sessions.connected().length,
    minParticipants: context.minParticipants,
    secureAggregation: context.secureAggregation,
    openRound: open === undefined ? null : { roundId: roundIdFromHex(open.roundId), participants: [...open.participants], startedAtUnixMs: open.startedAt.getTime() },
    fedgateVersion: context.fedgateVersion,
    startedAtUnixMs: context.startedAt.getTime(),
    revokedCertificates: context.revocations.serials.size,
    revokedCertificateSerials: [...context.revocations.serials].sort(),
    finalEvaluation: finalEvaluation === undefined ? null : modelEvaluationMessage(finalEvaluation),
    recordLevelPrivacy,
    participantLevelPrivacy,
  };
}

async function listRounds(context: AdminServiceContext, pageSize: number, pageToken: string, newestFirst: boolean): Promise<ListRoundsResponse> {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) throw fedgateError('INVALID_ARGUMENT', 'INVALID_PAGE_SIZE', `page_size must be a non-negative integer; got ${String(pageSize)}`);
  const page = await context.catalog.page(pageSize, pageToken, newestFirst);
  const rounds = [];
  // One at a time: a digest not yet known means an ONNX export, which is CPU work best not stacked up.
  for (const summary of page.rounds) rounds.push(committedRoundMessage(summary, await context.exports.onnxSha256(summary.modelHash)));
  return { rounds, nextPageToken: page.nextPageToken, totalRounds: page.total };
}

/** Resolves GetModel's selector to a round number and the model_hash of that round. */
async function resolveModel(request: GetModelRequest, context: AdminServiceContext): Promise<{ round: number; modelHash: string }> {
  const { catalog } = context;
  if (request.selector === 'round') {
    const round = Number(request.round);
    return { round, modelHash: await catalog.modelHashOfRound(round) };
  }
  if (request.selector === 'modelHash') {
    const hash = request.modelHash ?? Buffer.alloc(0);
    if (hash.length !== 32) throw fedgateError('INVALID_ARGUMENT', 'INVALID_HASH', `model_hash must be a 32-byte SHA-256 digest (a round's model_hash or onnx_sha256); got ${hash.length} bytes`);
    const hex = hash.toString('hex');
    // A model_hash names a round's model directly; an onnx_sha256 through the export index.
    const byModelHash = await catalog.roundOfModelHash(hex);
    const modelHash = byModelHash === undefined ? context.exports.modelHashOfOnnx(hex) : hex;
    const round = byModelHash ?? (modelHash === undefined ? undefined : await catalog.roundOfModelHash(modelHash));
    if (round === undefined || modelHash === undefined) throw fedgateError('NOT_FOUND', 'NO_SUCH_MODEL', `no committed round produced a model with model_hash or onnx_sha256 ${hex} (ListRounds lists both for every round)`);
    return { round, modelHash };
  }
  const round = catalog.committedRounds;
  return { round, modelHash: await catalog.modelHashOfRound(round) };
}

async function getModel(call: ServerWritableStream<GetModelRequest, ModelChunk>, context: AdminServiceContext): Promise<void> {
  call.on('error', () => undefined);
  try {
    const { round, modelHash } = await resolveModel(call.request, context);
    const onnx = await context.exports.export(modelHash);
    if (call.cancelled) return;
    const metadata = new Metadata();
    metadata.set(MODEL_ROUND_METADATA_KEY, String(round));
    metadata.set(MODEL_HASH_METADATA_KEY, modelHash);
    call.sendMetadata(metadata);
    // Same framing as Federation.DownloadModel.
    await sendModel(call, onnx.bytes, { modelSha256: hashBytes(onnx.sha256) });
  } catch (error) {
    report(context.logger, 'GetModel', error);
    failStream(call, error);
  }
}

async function revoke(context: AdminServiceContext, call: ServerUnaryCall<RevokeParticipantRequest, RevokeParticipantResponse>): Promise<RevokeParticipantResponse> {
  const request = call.request;
  let target: RevocationTarget;
  if (request.target === 'certificateSerial') target = { kind: 'serial', serial: String(request.certificateSerial ?? '') };
  else if (request.target === 'siteId') target = { kind: 'site', siteId: String(request.siteId ?? '') };
  else throw fedgateError('INVALID_ARGUMENT', 'TARGET_MISSING', 'RevokeParticipantRequest must set certificate_serial or site_id');
  const outcome = await context.revocationService.revoke(target, peerIdentity(call));
  return {
    revoked: outcome.revoked.map((entry) => ({
      certificateSerial: entry.serial,
      commonName: entry.commonName,
      role: entry.role,
      revokedAtUnixMs: entry.revokedAt.getTime(),
      alreadyRevoked: entry.alreadyRevoked,
    })),
    crlNumber: Number(outcome.crlNumber),
    closedSessions: [...outcome.closedSessions],
  };
}

function report(logger: Logger, method: string, error: unknown): void {
  const grpcStatus = toGrpcStatus(error);
  if (grpcStatus.unexpected) logger.error({ err: error, method }, 'admin call failed unexpectedly');
  else logger.info({ method, reason: grpcStatus.reason, detail: grpcStatus.details }, 'admin call refused');
}
