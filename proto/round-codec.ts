/**
 * Maps the plain SecAgg+ messages of crypto/secagg/messages.ts onto the round.proto messages as the
 * loader represents them (camelCase, bytes as Buffer) and back. Decoding treats every field as hostile:
 * wrong types, missing fields and out-of-range enums become a FedgateError naming the field, before the
 * state machine (which checks lengths and signatures) ever sees the message.
 */
import type * as secagg from '../crypto/secagg/messages.js';
import { FedgateError } from './errors.js';

type Bytes = Uint8Array;

// ---- round.proto shapes (loader output: camelCase, Buffer for bytes, arrays always present) ----

export interface WireAdvertiseKeys { roundId: Bytes; cipherPublicKey: Bytes; maskPublicKey: Bytes; nonceCommitment: Bytes; signature: Bytes }
export interface WireKeyList { roundId: Bytes; entries: { siteId: string; advertDigest: Bytes; nonceCommitment: Bytes }[] }
export interface WireNonceReveal { roundId: Bytes; keyListSignature: Bytes; nonce: Bytes }
export interface WireGraph {
  roundId: Bytes;
  nonces: { siteId: string; nonce: Bytes }[];
  neighbours: { siteId: string; advert: WireAdvertiseKeys | null; keyListSignature: Bytes; certificate: Bytes }[];
  revokedSerials: string[];
}
export interface WireShareKeys { roundId: Bytes; selfMaskCommitment: Bytes; shares: { receiver: string; ciphertext: Bytes }[]; signature: Bytes }
export interface WireShareDelivery { roundId: Bytes; survivors: string[]; shares: { sender: string; receiver: string; ciphertext: Bytes }[] }
export interface WireConsistencyRequest { roundId: Bytes; survivors: string[]; closings: { siteId: string; survivorDigest: Bytes; uploadHash: Bytes; signature: Bytes }[] }
export interface WireConsistencySignature { roundId: Bytes; signature: Bytes }
export interface WireUnmaskRequest { roundId: Bytes; signatures: { siteId: string; signature: Bytes }[] }
export type WireRevealedSecret = 'REVEALED_SECRET_UNSPECIFIED' | 'REVEALED_SECRET_SELF_MASK' | 'REVEALED_SECRET_MASK_KEY';
export interface WireUnmaskResponse { roundId: Bytes; shares: { dealer: string; secret: WireRevealedSecret; share: Bytes }[]; signature: Bytes }
export interface WireCommitHashes { roundId: Bytes; previousModelHash: Bytes; aggregateHash: Bytes; newModelHash: Bytes; optimizerStateHash: Bytes }
export interface WireCommitSignature extends WireCommitHashes { signature: Bytes }

/** Coordinator -> site stage payloads, by CoordinatorMessage oneof member name. */
export type WireServerStage =
  | { payload: 'keyList'; keyList: WireKeyList }
  | { payload: 'graph'; graph: WireGraph }
  | { payload: 'shareDelivery'; shareDelivery: WireShareDelivery }
  | { payload: 'consistencyRequest'; consistencyRequest: WireConsistencyRequest }
  | { payload: 'unmaskRequest'; unmaskRequest: WireUnmaskRequest }
  | { payload: 'commitRequest'; commitRequest: WireCommitHashes };

/** Site -> coordinator stage payloads (the masked input goes by upload). */
export type WireClientStage =
  | { payload: 'advertiseKeys'; advertiseKeys: WireAdvertiseKeys }
  | { payload: 'nonceReveal'; nonceReveal: WireNonceReveal }
  | { payload: 'shareKeys'; shareKeys: WireShareKeys }
  | { payload: 'consistencySignature'; consistencySignature: WireConsistencySignature }
  | { payload: 'unmaskResponse'; unmaskResponse: WireUnmaskResponse }
  | { payload: 'commitSignature'; commitSignature: WireCommitSignature };

// ---- encode ----

export function encodeServerStage(message: secagg.ServerMessage): WireServerStage {
  switch (message.stage) {
    case 'key_list':
      return { payload: 'keyList', keyList: { roundId: message.roundId, entries: message.entries.map((entry) => ({ ...entry })) } };
    case 'graph':
      return {
        payload: 'graph',
        graph: {
          roundId: message.roundId,
          nonces: message.nonces.map((entry) => ({ siteId: entry.siteId, nonce: entry.nonce })),
          neighbours: message.neighbours.map((neighbour) => ({
            siteId: neighbour.siteId,
            advert: encodeAdvert(neighbour.advert),
            keyListSignature: neighbour.keyListSignature,
            certificate: typeof neighbour.certificate === 'string' ? Buffer.from(neighbour.certificate, 'utf8') : neighbour.certificate,
          })),
          revokedSerials: [...message.revokedSerials],
        },
      };
    case 'share_delivery':
      return { payload: 'shareDelivery', shareDelivery: { roundId: message.roundId, survivors: [...message.survivors], shares: message.shares.map((share) => ({ ...share })) } };
    case 'consistency_request':
      return { payload: 'consistencyRequest', consistencyRequest: { roundId: message.roundId, survivors: [...message.survivors], closings: message.closings.map((closing) => ({ ...closing })) } };
    case 'unmask_request':
      return { payload: 'unmaskRequest', unmaskRequest: { roundId: message.roundId, signatures: message.signatures.map((entry) => ({ ...entry })) } };
    case 'commit_request':
      return { payload: 'commitRequest', commitRequest: commitHashesOf(message) };
  }
}

export function encodeClientStage(message: Exclude<secagg.ClientMessage, secagg.MaskedInputMessage>): WireClientStage {
  switch (message.stage) {
    case 'advertise_keys':
      return { payload: 'advertiseKeys', advertiseKeys: encodeAdvert(message) };
    case 'nonce_reveal':
      return { payload: 'nonceReveal', nonceReveal: { roundId: message.roundId, keyListSignature: message.keyListSignature, nonce: message.nonce } };
    case 'share_keys':
      return { payload: 'shareKeys', shareKeys: { roundId: message.roundId, selfMaskCommitment: message.selfMaskCommitment, shares: message.shares.map((share) => ({ ...share })), signature: message.signature } };
    case 'consistency_check':
      return { payload: 'consistencySignature', consistencySignature: { roundId: message.roundId, signature: message.signature } };
    case 'unmask':
      return {
        payload: 'unmaskResponse',
        unmaskResponse: {
          roundId: message.roundId,
          shares: message.shares.map((share) => ({ dealer: share.dealer, secret: share.secret === 'self_mask' ? 'REVEALED_SECRET_SELF_MASK' : 'REVEALED_SECRET_MASK_KEY', share: share.share })),
          signature: message.signature,
        },
      };
    case 'commit':
      return { payload: 'commitSignature', commitSignature: { ...commitHashesOf(message), signature: message.signature } };
  }
}

function encodeAdvert(advert: secagg.AdvertiseKeysMessage): WireAdvertiseKeys {
  return { roundId: advert.roundId, cipherPublicKey: advert.cipherPublicKey, maskPublicKey: advert.maskPublicKey, nonceCommitment: advert.nonceCommitment, signature: advert.signature };
}

function commitHashesOf(message: secagg.CommitHashes & { roundId: Bytes }): WireCommitHashes {
  return { roundId: message.roundId, previousModelHash: message.previousModelHash, aggregateHash: message.aggregateHash, newModelHash: message.newModelHash, optimizerStateHash: message.optimizerStateHash };
}

// ---- decode (hostile input) ----

class Reader {
  constructor(private readonly where: string) {}

  bytes(value: unknown, field: string): Uint8Array {
    if (!(value instanceof Uint8Array)) throw this.fail(field, 'bytes');
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  text(value: unknown, field: string): string {
    if (typeof value !== 'string' || value.length === 0) throw this.fail(field, 'a non-empty string');
    return value;
  }

  list<T>(value: unknown, field: string, item: (entry: Record<string, unknown>, path: string) => T): T[] {
    if (!Array.isArray(value)) throw this.fail(field, 'a list');
    return value.map((entry, index) => {
      if (entry === null || typeof entry !== 'object') throw this.fail(`${field}[${index}]`, 'a message');
      return item(entry as Record<string, unknown>, `${field}[${index}]`);
    });
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object') throw this.fail(field, 'a message');
    return value as Record<string, unknown>;
  }

  fail(field: string, expected: string): FedgateError {
    return new FedgateError('INVALID_ARGUMENT', `${this.where}.${field} must be ${expected}`);
  }
}

export function decodeServerStage(wire: { payload?: string } & Record<string, unknown>): secagg.ServerMessage {
  const name = wire.payload ?? '';
  const r = new Reader(name);
  const body = r.object(wire[name], name);
  const roundId = r.bytes(body['roundId'], 'roundId');
  switch (name) {
    case 'keyList':
      return { stage: 'key_list', roundId, entries: r.list(body['entries'], 'entries', (entry, path) => ({ siteId: r.text(entry['siteId'], `${path}.siteId`), advertDigest: r.bytes(entry['advertDigest'], `${path}.advertDigest`), nonceCommitment: r.bytes(entry['nonceCommitment'], `${path}.nonceCommitment`) })) };
    case 'graph':
      return {
        stage: 'graph',
        roundId,
        nonces: r.list(body['nonces'], 'nonces', (entry, path) => ({ siteId: r.text(entry['siteId'], `${path}.siteId`), nonce: r.bytes(entry['nonce'], `${path}.nonce`) })),
        neighbours: r.list(body['neighbours'], 'neighbours', (entry, path) => ({
          siteId: r.text(entry['siteId'], `${path}.siteId`),
          advert: decodeAdvert(r, r.object(entry['advert'], `${path}.advert`), `${path}.advert`),
          keyListSignature: r.bytes(entry['keyListSignature'], `${path}.keyListSignature`),
          certificate: r.bytes(entry['certificate'], `${path}.certificate`),
        })),
        revokedSerials: texts(r, body['revokedSerials'], 'revokedSerials'),
      };
    case 'shareDelivery':
      return { stage: 'share_delivery', roundId, survivors: texts(r, body['survivors'], 'survivors'), shares: r.list(body['shares'], 'shares', (entry, path) => ({ sender: r.text(entry['sender'], `${path}.sender`), receiver: r.text(entry['receiver'], `${path}.receiver`), ciphertext: r.bytes(entry['ciphertext'], `${path}.ciphertext`) })) };
    case 'consistencyRequest':
      return {
        stage: 'consistency_request',
        roundId,
        survivors: texts(r, body['survivors'], 'survivors'),
        closings: r.list(body['closings'], 'closings', (entry, path) => ({ siteId: r.text(entry['siteId'], `${path}.siteId`), survivorDigest: r.bytes(entry['survivorDigest'], `${path}.survivorDigest`), uploadHash: r.bytes(entry['uploadHash'], `${path}.uploadHash`), signature: r.bytes(entry['signature'], `${path}.signature`) })),
      };
    case 'unmaskRequest':
      return { stage: 'unmask_request', roundId, signatures: r.list(body['signatures'], 'signatures', (entry, path) => ({ siteId: r.text(entry['siteId'], `${path}.siteId`), signature: r.bytes(entry['signature'], `${path}.signature`) })) };
    case 'commitRequest':
      return { stage: 'commit_request', ...decodeHashes(r, body, roundId) };
    default:
      throw new FedgateError('INVALID_ARGUMENT', `unknown round stage message ${JSON.stringify(name)}`);
  }
}

export function decodeClientStage(wire: { payload?: string } & Record<string, unknown>): Exclude<secagg.ClientMessage, secagg.MaskedInputMessage> {
  const name = wire.payload ?? '';
  const r = new Reader(name);
  const body = r.object(wire[name], name);
  const roundId = r.bytes(body['roundId'], 'roundId');
  switch (name) {
    case 'advertiseKeys':
      return decodeAdvert(r, body, name);
    case 'nonceReveal':
      return { stage: 'nonce_reveal', roundId, keyListSignature: r.bytes(body['keyListSignature'], 'keyListSignature'), nonce: r.bytes(body['nonce'], 'nonce') };
    case 'shareKeys':
      return {
        stage: 'share_keys',
        roundId,
        selfMaskCommitment: r.bytes(body['selfMaskCommitment'], 'selfMaskCommitment'),
        shares: r.list(body['shares'], 'shares', (entry, path) => ({ receiver: r.text(entry['receiver'], `${path}.receiver`), ciphertext: r.bytes(entry['ciphertext'], `${path}.ciphertext`) })),
        signature: r.bytes(body['signature'], 'signature'),
      };
    case 'consistencySignature':
      return { stage: 'consistency_check', roundId, signature: r.bytes(body['signature'], 'signature') };
    case 'unmaskResponse':
      return {
        stage: 'unmask',
        roundId,
        shares: r.list(body['shares'], 'shares', (entry, path) => {
          const secret = entry['secret'];
          if (secret !== 'REVEALED_SECRET_SELF_MASK' && secret !== 'REVEALED_SECRET_MASK_KEY') throw r.fail(`${path}.secret`, 'REVEALED_SECRET_SELF_MASK or REVEALED_SECRET_MASK_KEY');
          return { dealer: r.text(entry['dealer'], `${path}.dealer`), secret: secret === 'REVEALED_SECRET_SELF_MASK' ? 'self_mask' : 'mask_key', share: r.bytes(entry['share'], `${path}.share`) };
        }),
        signature: r.bytes(body['signature'], 'signature'),
      };
    case 'commitSignature':
      return { stage: 'commit', ...decodeHashes(r, body, roundId), signature: r.bytes(body['signature'], 'signature') };
    default:
      throw new FedgateError('INVALID_ARGUMENT', `unknown round stage message ${JSON.stringify(name)}`);
  }
}

function decodeAdvert(r: Reader, body: Record<string, unknown>, where: string): secagg.AdvertiseKeysMessage {
  return {
    stage: 'advertise_keys',
    roundId: r.bytes(body['roundId'], `${where}.roundId`),
    cipherPublicKey: r.bytes(body['cipherPublicKey'], `${where}.cipherPublicKey`),
    maskPublicKey: r.bytes(body['maskPublicKey'], `${where}.maskPublicKey`),
    nonceCommitment: r.bytes(body['nonceCommitment'], `${where}.nonceCommitment`),
    signature: r.bytes(body['signature'], `${where}.signature`),
  };
}

function decodeHashes(r: Reader, body: Record<string, unknown>, roundId: Uint8Array): secagg.CommitHashes & { roundId: Uint8Array } {
  return {
    roundId,
    previousModelHash: r.bytes(body['previousModelHash'], 'previousModelHash'),
    aggregateHash: r.bytes(body['aggregateHash'], 'aggregateHash'),
    newModelHash: r.bytes(body['newModelHash'], 'newModelHash'),
    optimizerStateHash: r.bytes(body['optimizerStateHash'], 'optimizerStateHash'),
  };
}

function texts(r: Reader, value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw r.fail(field, 'a list of site ids');
  return value.map((item, index) => r.text(item, `${field}[${index}]`));
}
