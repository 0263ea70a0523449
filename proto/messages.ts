/**
 * The fedgate.v1 messages of federation.proto, as generated from the .proto files into proto/generated/
 * (`npm run proto:gen`; `npm run lint` fails when that folder is stale). Two types per message, in the
 * generator's naming:
 * - `X` is what a sender may hand to grpc-js: every field optional, bytes as Buffer, Uint8Array or
 *   base64 text, 64-bit integers as number, string or Long, enums by name or number;
 * - `X__Output` is what a receiver gets under the loader options of loader.ts: camelCase names, 64-bit
 *   integers as number (below 2^53 by protocol), enums as their names, bytes as Buffer, every scalar
 *   present (proto3 defaults filled in), unset messages as null, and each oneof as a property (`payload`,
 *   `part`) naming the member that is set.
 *
 * Received messages are untrusted input, and the __Output types are only as good as the loader: the
 * codecs of proto/ (session-codec.ts, round-codec.ts, masked-input-codec.ts, transfer.ts) check every
 * field before a domain object reaches coordinator/ or participant/.
 */
export type { Capabilities, Capabilities__Output } from './generated/fedgate/v1/Capabilities.js';
export type { CoordinatorMessage, CoordinatorMessage__Output } from './generated/fedgate/v1/CoordinatorMessage.js';
export type { DataChunk, DataChunk__Output } from './generated/fedgate/v1/DataChunk.js';
export type { DownloadModelRequest, DownloadModelRequest__Output } from './generated/fedgate/v1/DownloadModelRequest.js';
export type { CommitRecordEntry, CommitRecordEntry__Output } from './generated/fedgate/v1/CommitRecordEntry.js';
export type { GetCommitRecordsRequest, GetCommitRecordsRequest__Output } from './generated/fedgate/v1/GetCommitRecordsRequest.js';
export type { Heartbeat, Heartbeat__Output } from './generated/fedgate/v1/Heartbeat.js';
export type { Hello, Hello__Output } from './generated/fedgate/v1/Hello.js';
export type { HelloReply, HelloReply__Output } from './generated/fedgate/v1/HelloReply.js';
export type { ModelChunk, ModelChunk__Output } from './generated/fedgate/v1/ModelChunk.js';
export type { ParticipantMessage, ParticipantMessage__Output } from './generated/fedgate/v1/ParticipantMessage.js';
export type { RoundEnvelope, RoundEnvelope__Output } from './generated/fedgate/v1/RoundEnvelope.js';
export type { RoundId, RoundId__Output } from './generated/fedgate/v1/RoundId.js';
export type { RoundStage__Output } from './generated/fedgate/v1/RoundStage.js';
export type { TransferTrailer, TransferTrailer__Output } from './generated/fedgate/v1/TransferTrailer.js';
export type { UploadAck, UploadAck__Output } from './generated/fedgate/v1/UploadAck.js';
export type { UploadHeader, UploadHeader__Output } from './generated/fedgate/v1/UploadHeader.js';
export type { UploadMaskedInputRequest, UploadMaskedInputRequest__Output } from './generated/fedgate/v1/UploadMaskedInputRequest.js';

/** Wire protocol version of fedgate.v1 (Hello.protocol_version). */
export const PROTOCOL_VERSION = 1;

/** SHA-256 digests travel as raw 32 bytes. */
export const SHA256_BYTES = 32;
