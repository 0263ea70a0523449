/**
 * The Session stream of federation.proto in both directions: everything a site and the coordinator say
 * to each other on it, as domain objects (the round envelope of crypto/secagg/round-envelope.ts plus the
 * session plumbing: Hello, HelloReply, heartbeats, training progress) mapped onto ParticipantMessage and
 * CoordinatorMessage and back. The coordinator (coordinator/service) and the daemon (participant/daemon)
 * translate only through these four functions; stage payloads go through round-codec.ts.
 *
 * Decoding treats every field as hostile (wire-reader.ts); a member of the oneof that this version does
 * not know arrives as a message with no `payload` and is refused like an empty one.
 */
import { decodeRoundConfig } from '../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../crypto/secagg/config.js';
import type { CoordinatorToSite, RoundNotice, SiteSessionMessage } from '../crypto/secagg/round-envelope.js';
import type { CoordinatorMessage, CoordinatorMessage__Output } from './generated/fedgate/v1/CoordinatorMessage.js';
import type { ParticipantMessage, ParticipantMessage__Output } from './generated/fedgate/v1/ParticipantMessage.js';
import { FedgateError } from './errors.js';
import { decodeClientStage, decodeServerStage, encodeClientStage, encodeServerStage } from './round-codec.js';
import { MALFORMED_MESSAGE, WireReader } from './wire-reader.js';

/** What a site can run and has agreed to run (federation.proto Capabilities). */
export interface SiteCapabilities {
  /** "cpu", "cuda" or "cuda:N". */
  readonly device: string;
  readonly onnxOpset: number;
  readonly maxModelBytes: number;
  /** SHA-256 of each task document the site pinned. */
  readonly acceptedTaskHashes: readonly Uint8Array[];
}

/** The first message of a Session. Capabilities may be missing: the coordinator refuses that by name. */
export interface SiteHello {
  readonly protocolVersion: number;
  readonly fedgateVersion: string;
  readonly capabilities: SiteCapabilities | null;
}

/** The coordinator's answer to an accepted Hello (federation.proto HelloReply). */
export interface CoordinatorHello {
  readonly protocolVersion: number;
  readonly fedgateVersion: string;
  readonly federationId: string;
  /** The site id the coordinator authenticated (certificate CN), echoed for the site to check. */
  readonly siteId: string;
  readonly heartbeatIntervalMs: number;
}

export interface HeartbeatTick {
  readonly sequence: number;
  readonly sentAtUnixMs: number;
}

/** Local training progress of a site, for the operator's view. */
export interface TrainingProgressReport {
  readonly roundId: Uint8Array;
  readonly epoch: number;
  readonly step: number;
  readonly stepsTotal: number;
  readonly loss: number;
}

/** Everything a site says on its Session stream. */
export type SiteSessionTraffic =
  | { readonly kind: 'hello'; readonly hello: SiteHello }
  | { readonly kind: 'heartbeat'; readonly heartbeat: HeartbeatTick }
  | { readonly kind: 'training_progress'; readonly progress: TrainingProgressReport }
  | SiteSessionMessage;

/** Everything the coordinator says on a Session stream. */
export type CoordinatorSessionTraffic =
  | { readonly kind: 'hello_reply'; readonly reply: CoordinatorHello }
  | { readonly kind: 'heartbeat'; readonly heartbeat: HeartbeatTick }
  | CoordinatorToSite;

/** A received RoundStart: its canonical bytes (for H(RoundConfig)) and the RoundConfig decoded from them, once. */
export interface ReceivedRoundStart {
  readonly kind: 'round_start';
  readonly roundId: Uint8Array;
  readonly roundConfig: Uint8Array;
  readonly config: RoundConfig;
}

/** What a site receives: the coordinator's traffic, with RoundStart already decoded. */
export type ReceivedCoordinatorTraffic = Exclude<CoordinatorSessionTraffic, { readonly kind: 'round_start' }> | ReceivedRoundStart;

// ---- site -> coordinator ----

export function encodeParticipantMessage(message: SiteSessionTraffic): ParticipantMessage {
  switch (message.kind) {
    case 'hello': {
      const { hello } = message;
      const capabilities = hello.capabilities;
      return {
        payload: 'hello',
        hello: {
          protocolVersion: hello.protocolVersion,
          fedgateVersion: hello.fedgateVersion,
          capabilities:
            capabilities === null
              ? null
              : { device: capabilities.device, onnxOpset: capabilities.onnxOpset, maxModelBytes: capabilities.maxModelBytes, acceptedTaskHashes: [...capabilities.acceptedTaskHashes] },
        },
      };
    }
    case 'heartbeat':
      return { payload: 'heartbeat', heartbeat: { sequence: message.heartbeat.sequence, sentAtUnixMs: message.heartbeat.sentAtUnixMs } };
    case 'training_progress': {
      const { progress } = message;
      return { payload: 'trainingProgress', trainingProgress: { roundId: progress.roundId, epoch: progress.epoch, step: progress.step, stepsTotal: progress.stepsTotal, loss: progress.loss } };
    }
    case 'refusal':
      return { payload: 'roundRefusal', roundRefusal: encodeNotice(message) };
    case 'stage':
      return encodeClientStage(message.message);
  }
}

export function decodeParticipantMessage(wire: ParticipantMessage__Output): SiteSessionTraffic {
  const r = new WireReader('ParticipantMessage');
  switch (wire.payload) {
    case 'hello':
      return { kind: 'hello', hello: decodeSiteHello(wire) };
    case 'heartbeat':
      return { kind: 'heartbeat', heartbeat: decodeHeartbeat(r.message(wire.heartbeat, 'heartbeat'), r.at('heartbeat')) };
    case 'trainingProgress': {
      const body = r.message(wire.trainingProgress, 'trainingProgress');
      const b = r.at('trainingProgress');
      return {
        kind: 'training_progress',
        progress: { roundId: b.bytes(body.roundId, 'roundId'), epoch: b.count(body.epoch, 'epoch'), step: b.count(body.step, 'step'), stepsTotal: b.count(body.stepsTotal, 'stepsTotal'), loss: b.number(body.loss, 'loss') },
      };
    }
    case 'roundRefusal':
      return { kind: 'refusal', ...decodeNotice(r.message(wire.roundRefusal, 'roundRefusal'), r.at('roundRefusal')) };
    case 'round':
      throw reserved(r);
    case undefined:
      throw noPayload(r);
    default:
      return { kind: 'stage', message: decodeClientStage(wire) };
  }
}

/** The Hello of a ParticipantMessage (the first message of every Session). */
export function decodeSiteHello(wire: ParticipantMessage__Output): SiteHello {
  const r = new WireReader('ParticipantMessage');
  if (wire.payload !== 'hello') throw r.fail('payload', '"hello"', wire.payload ?? null);
  const body = r.message(wire.hello, 'hello');
  const b = r.at('hello');
  const capabilities = body.capabilities === null ? null : b.message(body.capabilities, 'capabilities');
  const c = b.at('capabilities');
  return {
    protocolVersion: b.count(body.protocolVersion, 'protocolVersion'),
    fedgateVersion: b.string(body.fedgateVersion, 'fedgateVersion'),
    capabilities:
      capabilities === null
        ? null
        : {
            device: c.string(capabilities.device, 'device'),
            onnxOpset: c.count(capabilities.onnxOpset, 'onnxOpset'),
            maxModelBytes: c.count(capabilities.maxModelBytes, 'maxModelBytes'),
            acceptedTaskHashes: c.bytesList(capabilities.acceptedTaskHashes, 'acceptedTaskHashes'),
          },
  };
}

// ---- coordinator -> site ----

export function encodeCoordinatorMessage(message: CoordinatorSessionTraffic): CoordinatorMessage {
  switch (message.kind) {
    case 'hello_reply': {
      const { reply } = message;
      return {
        payload: 'helloReply',
        helloReply: { protocolVersion: reply.protocolVersion, fedgateVersion: reply.fedgateVersion, federationId: reply.federationId, siteId: reply.siteId, heartbeatIntervalMs: reply.heartbeatIntervalMs },
      };
    }
    case 'heartbeat':
      return { payload: 'heartbeat', heartbeat: { sequence: message.heartbeat.sequence, sentAtUnixMs: message.heartbeat.sentAtUnixMs } };
    case 'round_start':
      return { payload: 'roundStart', roundStart: { roundConfig: message.roundConfig } };
    case 'stage':
      return encodeServerStage(message.message);
    case 'abort':
      return { payload: 'roundAbort', roundAbort: encodeNotice(message) };
    case 'committed':
      return {
        payload: 'roundCommitted',
        roundCommitted: { roundId: message.roundId, sequence: message.sequence, newModelHash: message.newModelHash, signatures: message.signatures, commitRecord: message.commitRecord },
      };
  }
}

export function decodeCoordinatorMessage(wire: CoordinatorMessage__Output): ReceivedCoordinatorTraffic {
  const r = new WireReader('CoordinatorMessage');
  switch (wire.payload) {
    case 'helloReply': {
      const body = r.message(wire.helloReply, 'helloReply');
      const b = r.at('helloReply');
      return {
        kind: 'hello_reply',
        reply: {
          protocolVersion: b.count(body.protocolVersion, 'protocolVersion'),
          fedgateVersion: b.string(body.fedgateVersion, 'fedgateVersion'),
          federationId: b.text(body.federationId, 'federationId'),
          siteId: b.text(body.siteId, 'siteId'),
          heartbeatIntervalMs: b.count(body.heartbeatIntervalMs, 'heartbeatIntervalMs'),
        },
      };
    }
    case 'heartbeat':
      return { kind: 'heartbeat', heartbeat: decodeHeartbeat(r.message(wire.heartbeat, 'heartbeat'), r.at('heartbeat')) };
    case 'roundStart': {
      const roundConfig = r.at('roundStart').bytes(r.message(wire.roundStart, 'roundStart').roundConfig, 'roundConfig');
      const config = decodeConfig(roundConfig, r.at('roundStart'));
      return { kind: 'round_start', roundId: config.roundId, roundConfig, config };
    }
    case 'roundAbort':
      return { kind: 'abort', ...decodeNotice(r.message(wire.roundAbort, 'roundAbort'), r.at('roundAbort')) };
    case 'roundCommitted': {
      const body = r.message(wire.roundCommitted, 'roundCommitted');
      const b = r.at('roundCommitted');
      return {
        kind: 'committed',
        roundId: b.bytes(body.roundId, 'roundId'),
        sequence: b.count(body.sequence, 'sequence'),
        newModelHash: b.bytes(body.newModelHash, 'newModelHash'),
        signatures: b.count(body.signatures, 'signatures'),
        commitRecord: b.bytes(body.commitRecord, 'commitRecord'),
      };
    }
    case 'round':
      throw reserved(r);
    case undefined:
      throw noPayload(r);
    default:
      return { kind: 'stage', message: decodeServerStage(wire) };
  }
}

// ---- shared pieces ----

function encodeNotice(notice: RoundNotice): { roundId: Uint8Array; reason: string; message: string } {
  return { roundId: notice.roundId, reason: notice.reason, message: notice.message };
}

function decodeNotice(body: { readonly roundId: unknown; readonly reason: unknown; readonly message: unknown }, r: WireReader): RoundNotice {
  return { roundId: r.bytes(body.roundId, 'roundId'), reason: r.text(body.reason, 'reason'), message: r.string(body.message, 'message') };
}

function decodeHeartbeat(body: { readonly sequence: unknown; readonly sentAtUnixMs: unknown }, r: WireReader): HeartbeatTick {
  return { sequence: r.count(body.sequence, 'sequence'), sentAtUnixMs: r.count(body.sentAtUnixMs, 'sentAtUnixMs') };
}

/** The RoundConfig of a RoundStart, decoded once for the whole round (its own checks name the bad field). */
function decodeConfig(bytes: Uint8Array, r: WireReader): RoundConfig {
  try {
    return decodeRoundConfig(bytes);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new FedgateError('INVALID_ARGUMENT', `${r.where}.roundConfig is not a RoundConfig: ${detail}`, { reason: MALFORMED_MESSAGE, cause: error });
  }
}

function reserved(r: WireReader): FedgateError {
  return new FedgateError('INVALID_ARGUMENT', `${r.where}.round is reserved and carries nothing yet: send the stage message itself`, { reason: MALFORMED_MESSAGE });
}

function noPayload(r: WireReader): FedgateError {
  return new FedgateError('INVALID_ARGUMENT', `${r.where} sets no payload (an empty message, or a member newer than fedgate.v1 as this side knows it)`, { reason: MALFORMED_MESSAGE });
}
