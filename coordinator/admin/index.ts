/**
 * coordinator/admin: the operator side of a running coordinator. The Admin gRPC service
 * (proto/fedgate/v1/admin.proto: status, participants, rounds, round events, model download, live
 * revocation) and the durable revocation set it maintains. The client that calls it (OperatorClient)
 * needs only the wire layer and lives in proto/admin-client.ts.
 */
export { attachAdminService, type AdminAttachOptions, type AttachedAdmin } from './admin-app.js';
export { ModelExports, ONNX_EXPORTS_FILE_NAME, type ExportedOnnx } from './model-exports.js';
export type { CaRevocation, CaRevocationResult, IssuedCertificateInfo, RevocationAuthority } from './revocation-authority.js';
export { RevocationRegistry, REVOCATIONS_FILE_NAME, type RevocationEntry } from './revocation-registry.js';
export { RevocationService, type RevocationOutcome, type RevocationTarget } from './revocation-service.js';
export { RoundCatalog, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type RoundPage, type RoundSummary } from './round-catalog.js';
export { RoundWatch, MAX_QUEUED_EVENTS } from './round-watch.js';
export type {
  CommittedRound,
  GetStatusResponse,
  Participant,
  RevokeParticipantResponse,
  RoundEventMessage,
  RoundMetricsMessage,
} from '../../proto/admin-messages.js';
export type { ReceivedModel } from '../../proto/admin-transfer.js';
