/**
 * TypeScript shapes of the fedgate.v1 messages as the loader (loader.ts) produces and accepts them:
 * camelCase field names, 64-bit integers as `number` (all below 2^53 by protocol), enums as their
 * name strings, bytes as Buffer, scalars always present (proto3 defaults filled in), unset message
 * fields as `null`, and each oneof as a `payload` / `part` string naming the member that is set.
 *
 * Keep in step with proto/fedgate/v1/federation.proto. Decoded values are untrusted input: check
 * lengths, enum values and presence where you use them (transfer.ts does for the chunked RPCs).
 */

import type { WireClientStage, WireServerStage } from './round-codec.js';

export const PROTOCOL_VERSION = 1;

/** SHA-256 digests travel as raw 32 bytes. */
export const SHA256_BYTES = 32;

export const ROUND_STAGES = [
  'ROUND_STAGE_UNSPECIFIED',
  'ROUND_STAGE_START',
  'ROUND_STAGE_ADVERTISE_KEYS',
  'ROUND_STAGE_SHARE_KEYS',
  'ROUND_STAGE_MASKED_INPUT',
  'ROUND_STAGE_CONSISTENCY_CHECK',
  'ROUND_STAGE_UNMASK',
  'ROUND_STAGE_COMMIT',
] as const;
export type RoundStage = (typeof ROUND_STAGES)[number];

export interface RoundId {
  readonly counter: number;
  /** 16 random bytes. */
  readonly nonce: Buffer;
}

export interface Capabilities {
  readonly device: string;
  readonly onnxOpset: number;
  readonly maxModelBytes: number;
  readonly acceptedTaskHashes: readonly Buffer[];
}

export interface Hello {
  readonly protocolVersion: number;
  readonly fedgateVersion: string;
  readonly capabilities: Capabilities | null;
}

export interface HelloReply {
  readonly protocolVersion: number;
  readonly fedgateVersion: string;
  readonly federationId: string;
  readonly siteId: string;
  readonly heartbeatIntervalMs: number;
}

export interface Heartbeat {
  readonly sequence: number;
  readonly sentAtUnixMs: number;
}

export interface RoundEnvelope {
  readonly roundId: RoundId | null;
  readonly stage: RoundStage;
}

/** `payload` names the member that is set; undefined when the sender set none (or one unknown to us). */
export type ParticipantMessage =
  | { readonly payload: 'hello'; readonly hello: Hello }
  | { readonly payload: 'heartbeat'; readonly heartbeat: Heartbeat }
  | { readonly payload: 'round'; readonly round: RoundEnvelope }
  | WireClientStage
  | { readonly payload: 'roundRefusal'; readonly roundRefusal: WireRoundNotice }
  | { readonly payload: 'trainingProgress'; readonly trainingProgress: WireTrainingProgress }
  | { readonly payload?: undefined };

export type CoordinatorMessage =
  | { readonly payload: 'helloReply'; readonly helloReply: HelloReply }
  | { readonly payload: 'heartbeat'; readonly heartbeat: Heartbeat }
  | { readonly payload: 'round'; readonly round: RoundEnvelope }
  | { readonly payload: 'roundStart'; readonly roundStart: { readonly roundConfig: Uint8Array } }
  | WireServerStage
  | { readonly payload: 'roundAbort'; readonly roundAbort: WireRoundNotice }
  | { readonly payload: 'roundCommitted'; readonly roundCommitted: WireRoundCommitted }
  | { readonly payload?: undefined };

/** RoundAbort and RoundRefusal (round.proto). */
export interface WireRoundNotice {
  readonly roundId: Uint8Array;
  readonly reason: string;
  readonly message: string;
}

export interface WireRoundCommitted {
  readonly roundId: Uint8Array;
  readonly sequence: number;
  readonly newModelHash: Uint8Array;
  readonly signatures: number;
}

export interface WireTrainingProgress {
  readonly roundId: Uint8Array;
  readonly epoch: number;
  readonly step: number;
  readonly stepsTotal: number;
  readonly loss: number;
}

export interface DownloadModelRequest {
  readonly modelHash: Buffer;
}

export interface TransferTrailer {
  readonly totalLength: number;
  readonly sha256: Buffer;
}

export interface ModelChunk {
  readonly offset: number;
  readonly data: Buffer;
  /** Set on the final message only. */
  readonly trailer: TransferTrailer | null;
}

export interface UploadHeader {
  readonly roundId: RoundId | null;
  readonly stage: RoundStage;
  readonly totalLength: number;
  readonly sha256: Buffer;
  /** MaskedInput closing: H(U2) as the site saw it (empty on other stages). */
  readonly survivorDigest?: Buffer;
  /** MaskedInput closing: the site's signature over (H(L), H(U2), sha256) (empty on other stages). */
  readonly signature?: Buffer;
}

export interface DataChunk {
  readonly offset: number;
  readonly data: Buffer;
}

export type UploadMaskedInputRequest =
  | { readonly part: 'header'; readonly header: UploadHeader }
  | { readonly part: 'chunk'; readonly chunk: DataChunk }
  | { readonly part?: undefined };

export interface UploadAck {
  readonly roundId: RoundId | null;
  readonly receivedLength: number;
  readonly sha256: Buffer;
}
