/**
 * TypeScript shapes of the fedgate.v1 Admin messages (proto/fedgate/v1/admin.proto) as the loader
 * produces and accepts them, with the conventions of messages.ts: camelCase names, 64-bit integers as
 * `number`, enums as their name strings, bytes as Buffer, unset messages as `null`, and each oneof as a
 * property naming the member that is set (`selector`, `target`).
 *
 * Keep in step with admin.proto. Requests are untrusted input: the service checks every field it uses.
 */
import type { RoundId } from './messages.js';

export interface GetStatusRequest {}

export interface OpenRound {
  readonly roundId: RoundId | null;
  readonly participants: readonly string[];
  readonly startedAtUnixMs: number;
}

export interface GetStatusResponse {
  readonly federationId: string;
  readonly taskHash: Buffer;
  readonly committedRounds: number;
  readonly roundsConfigured: number;
  readonly currentModelHash: Buffer;
  readonly currentModelOnnxSha256: Buffer;
  readonly connectedParticipants: number;
  readonly minParticipants: number;
  readonly secureAggregation: boolean;
  readonly openRound: OpenRound | null;
  readonly fedgateVersion: string;
  readonly startedAtUnixMs: number;
  readonly revokedCertificates: number;
}

export interface ListParticipantsRequest {}

export interface Participant {
  readonly siteId: string;
  readonly certificateSerial: string;
  readonly connectedAtUnixMs: number;
  readonly device: string;
  readonly fedgateVersion: string;
  readonly certificateNotAfterUnixMs: number;
}

export interface ListParticipantsResponse {
  readonly participants: readonly Participant[];
}

export interface ListRoundsRequest {
  readonly pageSize: number;
  readonly pageToken: string;
  readonly newestFirst: boolean;
}

export interface RoundMetricsMessage {
  readonly participants: number;
  readonly survivors: number;
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  readonly evalLoss: number;
  readonly evalAccuracy: number;
  readonly weightSum: number;
}

export interface CommittedRound {
  readonly sequence: number;
  readonly roundId: RoundId | null;
  readonly participants: readonly string[];
  readonly survivors: readonly string[];
  readonly signers: readonly string[];
  readonly previousModelHash: Buffer;
  readonly modelHash: Buffer;
  readonly onnxSha256: Buffer;
  readonly aggregateHash: Buffer;
  readonly optimizerStateHash: Buffer;
  readonly recordHash: Buffer;
  readonly committedAtUnixMs: number;
  readonly metrics: RoundMetricsMessage | null;
}

export interface ListRoundsResponse {
  readonly rounds: readonly CommittedRound[];
  readonly nextPageToken: string;
  readonly totalRounds: number;
}

export interface WatchRoundsRequest {
  readonly includeOpenRound: boolean;
}

export const ROUND_EVENT_TYPES = ['ROUND_EVENT_UNSPECIFIED', 'ROUND_EVENT_STARTED', 'ROUND_EVENT_COMMITTED', 'ROUND_EVENT_ABORTED'] as const;
export type RoundEventType = (typeof ROUND_EVENT_TYPES)[number];

export interface RoundEventMessage {
  readonly type: RoundEventType;
  readonly roundId: RoundId | null;
  readonly participants: readonly string[];
  readonly survivors: readonly string[];
  readonly sequence: number;
  readonly modelHash: Buffer;
  readonly abortReason: string;
  readonly metrics: RoundMetricsMessage | null;
  readonly stageSeconds: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly atUnixMs: number;
}

/** `selector` names the member that is set; absent = the latest committed round. */
export interface GetModelRequest {
  readonly selector?: 'round' | 'modelHash';
  readonly round?: number;
  readonly modelHash?: Buffer;
}

/** `target` names the member that is set. */
export interface RevokeParticipantRequest {
  readonly target?: 'certificateSerial' | 'siteId';
  readonly certificateSerial?: string;
  readonly siteId?: string;
}

export interface RevokedCertificateMessage {
  readonly certificateSerial: string;
  readonly commonName: string;
  readonly role: string;
  readonly revokedAtUnixMs: number;
  readonly alreadyRevoked: boolean;
}

export interface RevokeParticipantResponse {
  readonly revoked: readonly RevokedCertificateMessage[];
  readonly crlNumber: number;
  readonly closedSessions: readonly string[];
}

/** Initial-metadata keys of a GetModel response (admin.proto). */
export const MODEL_ROUND_METADATA_KEY = 'fedgate-model-round';
export const MODEL_HASH_METADATA_KEY = 'fedgate-model-hash';
