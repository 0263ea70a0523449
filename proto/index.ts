/**
 * proto/: fedgate's wire layer. The .proto files (fedgate/v1/), their loader, the message and service
 * types generated from them (generated/), the codecs that translate wire messages to domain objects and
 * back, and what coordinator and participant share on top of gRPC: chunked transfers with hashing, the
 * error <-> status translation, mutual-TLS credentials, peer identity and access control, and server
 * assembly (limits, health, reflection).
 */
// The one error type (platform/errors.ts), as proto/errors.ts re-exports it for the wire layer.
export * from './errors.js';
export {
  REASON_METADATA_KEY,
  codeName,
  failStream,
  fromGrpcError,
  isKnownError,
  toGrpcStatus,
  toServiceError,
  type GrpcStatus,
  type KnownError,
  type PureFolderErrorCode,
  type PureFolderErrorReason,
} from './status.js';
export {
  FEDERATION_PROTO_FILE,
  FEDERATION_SERVICE_NAME,
  PROTO_LOADER_OPTIONS,
  federationProtocol,
  loadFederationProtocol,
  protoRoot,
  type FederationClient,
  type FederationClientConstructor,
  type FederationHandlers,
  type FederationProtocol,
} from './loader.js';
export * from './messages.js';
export { ROUND_STAGES, isRoundStage, roundStageOf } from './round-stage.js';
export {
  decodeCoordinatorMessage,
  decodeParticipantMessage,
  decodeSiteHello,
  encodeCoordinatorMessage,
  encodeParticipantMessage,
  type CoordinatorHello,
  type CoordinatorSessionTraffic,
  type HeartbeatTick,
  type ReceivedCoordinatorTraffic,
  type ReceivedRoundStart,
  type SiteCapabilities,
  type SiteHello,
  type SiteSessionTraffic,
  type TrainingProgressReport,
} from './session-codec.js';
export { decodeClientStage, decodeServerStage, encodeClientStage, encodeServerStage } from './round-codec.js';
export { decodeMaskedInputUpload, encodeMaskedInputUpload, type MaskedInputUpload } from './masked-input-codec.js';
export { MALFORMED_MESSAGE } from './wire-reader.js';
export {
  ChunkAssembler,
  DEFAULT_CHUNK_BYTES,
  MAX_CHUNK_BYTES,
  MIB,
  checkSha256,
  chunkPayload,
  sha256,
  type AssemblerOptions,
  type ExpectedTotal,
  type PayloadChunk,
} from './chunking.js';
export {
  downloadModel,
  receiveUpload,
  sendModel,
  uploadAck,
  uploadMaskedInput,
  type DownloadOptions,
  type ReceiveUploadOptions,
  type ReceivedUpload,
  type SendOptions,
  type UploadOptions,
  type UploadTarget,
} from './transfer.js';
export {
  MAX_COMMIT_RECORDS_PER_CALL,
  fetchCommitRecords,
  readCommitRecordsRequest,
  sendCommitRecords,
  type CommitRecordPageEntry,
  type FetchCommitRecordsOptions,
} from './commit-records.js';
export {
  FLOW_CONTROL_WINDOW_BYTES,
  GRPC_DEFAULT_MAX_MESSAGE_BYTES,
  HTTP2_MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MESSAGE_HEADROOM_BYTES,
  clientChannelOptions,
  serverChannelOptions,
  serverHttp2Settings,
  type TransportTuning,
} from './channel-options.js';
export { channelCredentials, serverCredentials, type ChannelCredentialsOptions, type TlsIdentity } from './credentials.js';
export { coordinatorChannel, IP_TARGET_SERVER_NAME, targetHost, type CoordinatorChannel } from './coordinator-channel.js';
export { checkHelloFields } from './hello-fields.js';
export {
  canonicalSerial,
  commonNameProblem,
  describePeerCertificate,
  DirectIssuance,
  identityFromCertificate,
  peerIdentity,
  verifiedPeerCertificate,
  type AuthenticatedCall,
  type PeerIdentity,
} from './identity.js';
export {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  HEALTH_SERVICE_NAME,
  REFLECTION_SERVICE_NAMES,
  guardCall,
  requireFederationPeer,
  requireVerifiedPeer,
  type AccessControlOptions,
  type AccessDenial,
  type AccessPolicy,
} from './access-control.js';
export { addHealthService, addReflectionService, bindServer, createFedgateServer, raiseConnectionWindows, shutdownServer, type FedgateServerOptions } from './server.js';
export {
  ADMIN_ACCESS_POLICY,
  ADMIN_PROTO_FILE,
  ADMIN_SERVICE_NAME,
  adminProtocol,
  loadAdminProtocol,
  type AdminClient,
  type AdminClientConstructor,
  type AdminHandlers,
  type AdminProtocol,
} from './admin-loader.js';
export * from './admin-messages.js';
export { receiveModelStream, type ReceiveModelOptions, type ReceivedModel } from './admin-transfer.js';
export { OperatorClient, DEFAULT_MAX_MODEL_BYTES, type ModelSelector, type OperatorConnection } from './admin-client.js';
