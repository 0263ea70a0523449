/**
 * The Session stream codecs (proto/session-codec.ts over proto/round-codec.ts) against the real loader:
 * every message family goes domain -> generated type -> protobuf bytes -> generated type (as grpc-js
 * delivers it) -> domain -> generated type -> bytes, and must come back equal with the same bytes. Then
 * hostile input: missing fields, wrong types, unknown oneof members and wrong enum values are refused
 * with an error naming the field.
 */
import { describe, expect, it } from 'vitest';
import type { MethodDefinition } from '@grpc/proto-loader';
import { FedgateError } from '../../../proto/errors.js';
import { federationProtocol } from '../../../proto/loader.js';
import type { CoordinatorMessage, CoordinatorMessage__Output, ParticipantMessage, ParticipantMessage__Output } from '../../../proto/messages.js';
import { decodeClientStage, decodeServerStage, encodeClientStage, encodeServerStage } from '../../../proto/round-codec.js';
import { decodeCoordinatorMessage, decodeParticipantMessage, decodeSiteHello, encodeCoordinatorMessage, encodeParticipantMessage } from '../../../proto/session-codec.js';
import { MALFORMED_MESSAGE } from '../../../proto/wire-reader.js';
import { COORDINATOR_TRAFFIC_SAMPLES, ROUND_CONFIG, ROUND_CONFIG_BYTES, ROUND_ID, ROUND_START, SERVER_STAGE_SAMPLES, SITE_TRAFFIC_SAMPLES, CLIENT_STAGE_SAMPLES } from '../../support/wire-samples.js';

const session: MethodDefinition<ParticipantMessage, CoordinatorMessage, ParticipantMessage__Output, CoordinatorMessage__Output> = federationProtocol().federationService.Session;

/** What grpc-js hands the coordinator for `message`. */
const overTheWireToCoordinator = (message: ParticipantMessage): ParticipantMessage__Output => session.requestDeserialize(session.requestSerialize(message));
/** What grpc-js hands a site for `message`. */
const overTheWireToSite = (message: CoordinatorMessage): CoordinatorMessage__Output => session.responseDeserialize(session.responseSerialize(message));

const label = (traffic: { kind: string; message?: unknown }): string => (traffic.kind === 'stage' ? `stage ${(traffic.message as { stage: string }).stage}` : traffic.kind);

describe('site -> coordinator: every message family survives the wire unchanged', () => {
  it.each(SITE_TRAFFIC_SAMPLES.map((traffic) => [label(traffic), traffic] as const))('%s', (_name, traffic) => {
    const bytes = session.requestSerialize(encodeParticipantMessage(traffic));
    const received = session.requestDeserialize(bytes);
    const decoded = decodeParticipantMessage(received);
    expect(decoded).toEqual(traffic);
    // generated -> domain -> generated: nothing lost or reordered, down to the bytes.
    expect(Buffer.from(session.requestSerialize(encodeParticipantMessage(decoded))).equals(bytes)).toBe(true);
  });

  it('decodes the Hello alone, for the first message of a Session', () => {
    const [hello] = SITE_TRAFFIC_SAMPLES;
    if (hello?.kind !== 'hello') throw new Error('first sample must be a Hello');
    expect(decodeSiteHello(overTheWireToCoordinator(encodeParticipantMessage(hello)))).toEqual(hello.hello);
    expect(() => decodeSiteHello(overTheWireToCoordinator({ payload: 'heartbeat', heartbeat: { sequence: 1, sentAtUnixMs: 1 } }))).toThrow('ParticipantMessage.payload must be "hello", got "heartbeat"');
  });

  it('maps the stage messages alone (round-codec.ts) the same way', () => {
    for (const message of CLIENT_STAGE_SAMPLES) expect(decodeClientStage(overTheWireToCoordinator(encodeClientStage(message)))).toEqual(message);
  });
});

describe('coordinator -> site: every message family survives the wire unchanged', () => {
  it.each(COORDINATOR_TRAFFIC_SAMPLES.map((traffic) => [label(traffic), traffic] as const))('%s', (_name, traffic) => {
    const bytes = session.responseSerialize(encodeCoordinatorMessage(traffic));
    const decoded = decodeCoordinatorMessage(session.responseDeserialize(bytes));
    expect(decoded).toEqual(traffic);
    expect(Buffer.from(session.responseSerialize(encodeCoordinatorMessage(decoded))).equals(bytes)).toBe(true);
  });

  it('round_start: the site gets the canonical bytes and the RoundConfig decoded from them, once', () => {
    const bytes = session.responseSerialize(encodeCoordinatorMessage(ROUND_START));
    const decoded = decodeCoordinatorMessage(session.responseDeserialize(bytes));
    expect(decoded).toEqual({ ...ROUND_START, config: ROUND_CONFIG });
    if (decoded.kind !== 'round_start') throw new Error('expected round_start');
    expect(decoded.roundId).toEqual(ROUND_ID);
    expect(Buffer.from(decoded.roundConfig).equals(Buffer.from(ROUND_CONFIG_BYTES))).toBe(true);
    expect(Buffer.from(session.responseSerialize(encodeCoordinatorMessage(decoded))).equals(bytes)).toBe(true);
  });

  it('maps the stage messages alone (round-codec.ts) the same way, and sends a PEM certificate as its bytes', () => {
    for (const message of SERVER_STAGE_SAMPLES) expect(decodeServerStage(overTheWireToSite(encodeServerStage(message)))).toEqual(message);
    const graph = SERVER_STAGE_SAMPLES.find((message) => message.stage === 'graph');
    if (graph?.stage !== 'graph' || graph.neighbours[0] === undefined) throw new Error('graph sample missing');
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const decoded = decodeServerStage(overTheWireToSite(encodeServerStage({ ...graph, neighbours: [{ ...graph.neighbours[0], certificate: pem }] })));
    expect(decoded.stage === 'graph' && Buffer.from(decoded.neighbours[0]?.certificate as Uint8Array).toString('utf8')).toBe(pem);
  });
});

/** A received message as hostile code could shape it (the loader would not, but a decoder must not rely on that). */
const toCoordinator = (wire: unknown): ParticipantMessage__Output => wire as ParticipantMessage__Output;
const toSite = (wire: unknown): CoordinatorMessage__Output => wire as CoordinatorMessage__Output;

function refusal(decode: () => unknown): FedgateError {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return error as FedgateError;
  }
  throw new Error('expected the decoder to refuse');
}

const roundId = Buffer.from(ROUND_ID);
const advert = { roundId, cipherPublicKey: Buffer.alloc(32), maskPublicKey: Buffer.alloc(32), nonceCommitment: Buffer.alloc(32), signature: Buffer.alloc(256) };

describe('decodeParticipantMessage refuses hostile input, naming the field', () => {
  const cases: [string, ParticipantMessage__Output, string][] = [
    ['no member set (empty message)', toCoordinator({}), 'ParticipantMessage sets no payload'],
    ['a member newer than this version (the loader drops it: field 30 of the oneof)', session.requestDeserialize(Buffer.from([0xf2, 0x01, 0x00])), 'ParticipantMessage sets no payload'],
    ['an unknown member name', toCoordinator({ payload: 'maskedInput', maskedInput: {} }), 'ParticipantMessage.payload "maskedInput" is not a round stage message'],
    ['the reserved round envelope', toCoordinator({ payload: 'round', round: { roundId: null, stage: 'ROUND_STAGE_START' } }), 'ParticipantMessage.round is reserved'],
    ['a member named but not set', toCoordinator({ payload: 'shareKeys', shareKeys: null }), 'ParticipantMessage.shareKeys must be a message'],
    ['a missing field', toCoordinator({ payload: 'advertiseKeys', advertiseKeys: { ...advert, signature: undefined } }), 'ParticipantMessage.advertiseKeys.signature must be bytes'],
    ['bytes given as text', toCoordinator({ payload: 'nonceReveal', nonceReveal: { roundId: 'AAAA', keyListSignature: Buffer.alloc(1), nonce: Buffer.alloc(1) } }), 'ParticipantMessage.nonceReveal.roundId must be bytes'],
    ['a list that is not one', toCoordinator({ payload: 'shareKeys', shareKeys: { roundId, selfMaskCommitment: Buffer.alloc(32), shares: 'site-b', signature: Buffer.alloc(1) } }), 'ParticipantMessage.shareKeys.shares must be a list'],
    ['a list entry that is not a message', toCoordinator({ payload: 'shareKeys', shareKeys: { roundId, selfMaskCommitment: Buffer.alloc(32), shares: [null], signature: Buffer.alloc(1) } }), 'ParticipantMessage.shareKeys.shares[0] must be a message'],
    ['an empty site id', toCoordinator({ payload: 'shareKeys', shareKeys: { roundId, selfMaskCommitment: Buffer.alloc(32), shares: [{ receiver: '', ciphertext: Buffer.alloc(1) }], signature: Buffer.alloc(1) } }), 'ParticipantMessage.shareKeys.shares[0].receiver must be a non-empty string'],
    ['a site id of the wrong type', toCoordinator({ payload: 'unmaskResponse', unmaskResponse: { roundId, shares: [{ dealer: 7, secret: 'REVEALED_SECRET_SELF_MASK', share: Buffer.alloc(34) }], signature: Buffer.alloc(1) } }), 'ParticipantMessage.unmaskResponse.shares[0].dealer must be a non-empty string'],
    ['an unspecified enum', toCoordinator({ payload: 'unmaskResponse', unmaskResponse: { roundId, shares: [{ dealer: 'site-a', secret: 'REVEALED_SECRET_UNSPECIFIED', share: Buffer.alloc(34) }], signature: Buffer.alloc(1) } }), 'ParticipantMessage.unmaskResponse.shares[0].secret must be one of REVEALED_SECRET_SELF_MASK, REVEALED_SECRET_MASK_KEY, got "REVEALED_SECRET_UNSPECIFIED"'],
    ['an enum number this version does not name (as the loader passes it on)', session.requestDeserialize(session.requestSerialize({ payload: 'unmaskResponse', unmaskResponse: { roundId, shares: [{ dealer: 'site-a', secret: 7 as never, share: Buffer.alloc(34) }], signature: Buffer.alloc(1) } })), 'ParticipantMessage.unmaskResponse.shares[0].secret must be one of REVEALED_SECRET_SELF_MASK, REVEALED_SECRET_MASK_KEY, got 7'],
    ['a refusal without reason', toCoordinator({ payload: 'roundRefusal', roundRefusal: { roundId, reason: '', message: 'x' } }), 'ParticipantMessage.roundRefusal.reason must be a non-empty string'],
    ['a heartbeat counter below zero', toCoordinator({ payload: 'heartbeat', heartbeat: { sequence: -1, sentAtUnixMs: 0 } }), 'ParticipantMessage.heartbeat.sequence must be a non-negative integer below 2^53'],
    ['a fractional progress step', toCoordinator({ payload: 'trainingProgress', trainingProgress: { roundId, epoch: 1, step: 1.5, stepsTotal: 2, loss: 0.1 } }), 'ParticipantMessage.trainingProgress.step must be a non-negative integer below 2^53'],
    ['a Hello without its body', toCoordinator({ payload: 'hello', hello: null }), 'ParticipantMessage.hello must be a message'],
    ['a Hello with a text version', toCoordinator({ payload: 'hello', hello: { protocolVersion: '1', fedgateVersion: '0.1.0', capabilities: null } }), 'ParticipantMessage.hello.protocolVersion must be a non-negative integer below 2^53'],
    ['a task hash that is not bytes', toCoordinator({ payload: 'hello', hello: { protocolVersion: 1, fedgateVersion: '0.1.0', capabilities: { device: 'cpu', onnxOpset: 17, maxModelBytes: 1, acceptedTaskHashes: ['ab'] } } }), 'ParticipantMessage.hello.capabilities.acceptedTaskHashes[0] must be bytes'],
    ['a commit signature with a hash missing', toCoordinator({ payload: 'commitSignature', commitSignature: { roundId, previousModelHash: Buffer.alloc(32), aggregateHash: null, newModelHash: Buffer.alloc(32), optimizerStateHash: Buffer.alloc(32), signature: Buffer.alloc(1) } }), 'ParticipantMessage.commitSignature.aggregateHash must be bytes'],
  ];

  it.each(cases)('%s', (_name, wire, message) => {
    const error = refusal(() => decodeParticipantMessage(wire));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.reason).toBe(MALFORMED_MESSAGE);
    expect(error.message).toContain(message);
  });
});

describe('decodeCoordinatorMessage refuses hostile input, naming the field', () => {
  const cases: [string, CoordinatorMessage__Output, string][] = [
    ['no member set (empty message)', toSite({}), 'CoordinatorMessage sets no payload'],
    ['a member newer than this version (field 30 of the oneof)', session.responseDeserialize(Buffer.from([0xf2, 0x01, 0x00])), 'CoordinatorMessage sets no payload'],
    ['an unknown member name', toSite({ payload: 'aggregate', aggregate: {} }), 'CoordinatorMessage.payload "aggregate" is not a round stage message'],
    ['the reserved round envelope', toSite({ payload: 'round', round: null }), 'CoordinatorMessage.round is reserved'],
    ['a RoundStart that is not a RoundConfig', toSite({ payload: 'roundStart', roundStart: { roundConfig: Buffer.from('not a config') } }), 'CoordinatorMessage.roundStart.roundConfig is not a RoundConfig'],
    ['a RoundStart without bytes', toSite({ payload: 'roundStart', roundStart: { roundConfig: [1, 2, 3] } }), 'CoordinatorMessage.roundStart.roundConfig must be bytes'],
    ['a graph neighbour without advert', toSite({ payload: 'graph', graph: { roundId, nonces: [], neighbours: [{ siteId: 'site-b', advert: null, keyListSignature: Buffer.alloc(1), certificate: Buffer.alloc(1) }], revokedSerials: [] } }), 'CoordinatorMessage.graph.neighbours[0].advert must be a message'],
    ['a field of a nested advert missing', toSite({ payload: 'graph', graph: { roundId, nonces: [], neighbours: [{ siteId: 'site-b', advert: { ...advert, maskPublicKey: undefined }, keyListSignature: Buffer.alloc(1), certificate: Buffer.alloc(1) }], revokedSerials: [] } }), 'CoordinatorMessage.graph.neighbours[0].advert.maskPublicKey must be bytes'],
    ['a revoked serial that is not text', toSite({ payload: 'graph', graph: { roundId, nonces: [], neighbours: [], revokedSerials: [12] } }), 'CoordinatorMessage.graph.revokedSerials[0] must be a non-empty string'],
    ['a survivor list that is not one', toSite({ payload: 'shareDelivery', shareDelivery: { roundId, survivors: 'site-a', shares: [] } }), 'CoordinatorMessage.shareDelivery.survivors must be a list of non-empty strings'],
    ['a closing without upload hash', toSite({ payload: 'consistencyRequest', consistencyRequest: { roundId, survivors: ['site-a'], closings: [{ siteId: 'site-a', survivorDigest: Buffer.alloc(32), signature: Buffer.alloc(1) }] } }), 'CoordinatorMessage.consistencyRequest.closings[0].uploadHash must be bytes'],
    ['a stage message without round id', toSite({ payload: 'unmaskRequest', unmaskRequest: { signatures: [] } }), 'CoordinatorMessage.unmaskRequest.roundId must be bytes'],
    ['a commit request with a hash as text', toSite({ payload: 'commitRequest', commitRequest: { roundId, previousModelHash: 'aa', aggregateHash: Buffer.alloc(32), newModelHash: Buffer.alloc(32), optimizerStateHash: Buffer.alloc(32) } }), 'CoordinatorMessage.commitRequest.previousModelHash must be bytes'],
    ['a HelloReply without federation id', toSite({ payload: 'helloReply', helloReply: { protocolVersion: 1, fedgateVersion: '0.1.0', federationId: '', siteId: 'site-a', heartbeatIntervalMs: 1000 } }), 'CoordinatorMessage.helloReply.federationId must be a non-empty string'],
    ['a commit announcement with a negative sequence', toSite({ payload: 'roundCommitted', roundCommitted: { roundId, sequence: -2, newModelHash: Buffer.alloc(32), signatures: 3 } }), 'CoordinatorMessage.roundCommitted.sequence must be a non-negative integer below 2^53'],
    ['an abort without reason', toSite({ payload: 'roundAbort', roundAbort: { roundId, message: 'x' } }), 'CoordinatorMessage.roundAbort.reason must be a non-empty string'],
  ];

  it.each(cases)('%s', (_name, wire, message) => {
    const error = refusal(() => decodeCoordinatorMessage(wire));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.reason).toBe(MALFORMED_MESSAGE);
    expect(error.message).toContain(message);
  });
});
