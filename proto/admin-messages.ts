/**
 * The fedgate.v1 Admin messages (admin.proto), as generated into proto/generated/ (`npm run proto:gen`),
 * under the names the coordinator's Admin service, its client and the CLI use. Each name is the
 * generated `__Output` shape, what a receiver gets under the loader options of loader.ts (camelCase
 * names, 64-bit integers as number, enums as their names, bytes as Buffer, every scalar present, unset
 * messages as null, each oneof as a property naming the member set: `selector`, `target`); a sender
 * that fills every field sends it as is.
 *
 * Requests are untrusted input: the service checks every field it uses.
 */
import { RoundEventType as ROUND_EVENT_TYPE } from './generated/fedgate/v1/RoundEventType.js';

export type { CommittedRound__Output as CommittedRound } from './generated/fedgate/v1/CommittedRound.js';
export type { GetModelRequest__Output as GetModelRequest } from './generated/fedgate/v1/GetModelRequest.js';
export type { GetStatusRequest__Output as GetStatusRequest } from './generated/fedgate/v1/GetStatusRequest.js';
export type { GetStatusResponse__Output as GetStatusResponse } from './generated/fedgate/v1/GetStatusResponse.js';
export type { ListParticipantsRequest__Output as ListParticipantsRequest } from './generated/fedgate/v1/ListParticipantsRequest.js';
export type { ListParticipantsResponse__Output as ListParticipantsResponse } from './generated/fedgate/v1/ListParticipantsResponse.js';
export type { ListRoundsRequest__Output as ListRoundsRequest } from './generated/fedgate/v1/ListRoundsRequest.js';
export type { ListRoundsResponse__Output as ListRoundsResponse } from './generated/fedgate/v1/ListRoundsResponse.js';
export type { RecordLevelPrivacy__Output as RecordLevelPrivacyMessage } from './generated/fedgate/v1/RecordLevelPrivacy.js';
export type { ParticipantLevelPrivacy__Output as ParticipantLevelPrivacyMessage } from './generated/fedgate/v1/ParticipantLevelPrivacy.js';
export type { RoundDistributedDp__Output as RoundDistributedDpMessage } from './generated/fedgate/v1/RoundDistributedDp.js';
export type { ModelEvaluation__Output as ModelEvaluationMessage } from './generated/fedgate/v1/ModelEvaluation.js';
export type { OpenRound__Output as OpenRound } from './generated/fedgate/v1/OpenRound.js';
export type { Participant__Output as Participant } from './generated/fedgate/v1/Participant.js';
export type { RevokeParticipantRequest__Output as RevokeParticipantRequest } from './generated/fedgate/v1/RevokeParticipantRequest.js';
export type { RevokeParticipantResponse__Output as RevokeParticipantResponse } from './generated/fedgate/v1/RevokeParticipantResponse.js';
export type { RevokedCertificate__Output as RevokedCertificateMessage } from './generated/fedgate/v1/RevokedCertificate.js';
export type { RoundEvent__Output as RoundEventMessage } from './generated/fedgate/v1/RoundEvent.js';
export type { RoundEventType__Output as RoundEventType } from './generated/fedgate/v1/RoundEventType.js';
export type { RoundMetrics__Output as RoundMetricsMessage } from './generated/fedgate/v1/RoundMetrics.js';
export type { WatchRoundsRequest__Output as WatchRoundsRequest } from './generated/fedgate/v1/WatchRoundsRequest.js';

/** Every RoundEventType name, ROUND_EVENT_UNSPECIFIED first. */
export const ROUND_EVENT_TYPES = Object.freeze(Object.values(ROUND_EVENT_TYPE));

/** Initial-metadata keys of a GetModel response (admin.proto). */
export const MODEL_ROUND_METADATA_KEY = 'fedgate-model-round';
export const MODEL_HASH_METADATA_KEY = 'fedgate-model-hash';
