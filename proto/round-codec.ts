/**
 * Maps the plain SecAgg+ stage messages of crypto/secagg/messages.ts onto their round.proto messages,
 * carried as members of the Session stream's oneof (federation.proto), and back. Encoding builds the
 * generated input types; decoding takes what the loader produced and treats every field as hostile:
 * a wrong type, a missing message or an unknown enum name is a FedgateError naming the field, raised
 * before the state machine (which checks lengths and signatures) ever sees the message.
 */
import type * as secagg from '../crypto/secagg/messages.js';
import type { SessionClientMessage } from '../crypto/secagg/round-envelope.js';
import { STAGE } from '../crypto/secagg/stages.js';
import type { AdvertiseKeys, AdvertiseKeys__Output } from './generated/fedgate/v1/AdvertiseKeys.js';
import type { CommitRequest, CommitRequest__Output } from './generated/fedgate/v1/CommitRequest.js';
import type { CommitSignature__Output } from './generated/fedgate/v1/CommitSignature.js';
import type { CoordinatorMessage, CoordinatorMessage__Output } from './generated/fedgate/v1/CoordinatorMessage.js';
import type { ParticipantMessage, ParticipantMessage__Output } from './generated/fedgate/v1/ParticipantMessage.js';
import { RevealedSecret, type RevealedSecret__Output } from './generated/fedgate/v1/RevealedSecret.js';
import { FedgateError } from './errors.js';
import { MALFORMED_MESSAGE, WireReader } from './wire-reader.js';

/** RevealedSecret of round.proto for each secret a share may belong to. */
const WIRE_SECRET: Readonly<Record<secagg.RevealedSecret, RevealedSecret__Output>> = Object.freeze({
  self_mask: RevealedSecret.REVEALED_SECRET_SELF_MASK,
  mask_key: RevealedSecret.REVEALED_SECRET_MASK_KEY,
});

// ---- encode ----

/** A coordinator -> site stage message as its CoordinatorMessage member. */
export function encodeServerStage(message: secagg.ServerMessage): CoordinatorMessage {
  switch (message.stage) {
    case STAGE.keyList:
      return { payload: 'keyList', keyList: { roundId: message.roundId, entries: message.entries.map((entry) => ({ siteId: entry.siteId, advertDigest: entry.advertDigest, nonceCommitment: entry.nonceCommitment })) } };
    case STAGE.graph:
      return {
        payload: 'graph',
        graph: {
          roundId: message.roundId,
          nonces: message.nonces.map((entry) => ({ siteId: entry.siteId, nonce: entry.nonce })),
          neighbours: message.neighbours.map((neighbour) => ({
            siteId: neighbour.siteId,
            advert: encodeAdvert(neighbour.advert),
            keyListSignature: neighbour.keyListSignature,
            // A PEM certificate travels as its text's bytes; the site parses DER and PEM alike.
            certificate: typeof neighbour.certificate === 'string' ? Buffer.from(neighbour.certificate, 'utf8') : neighbour.certificate,
          })),
          revokedSerials: [...message.revokedSerials],
        },
      };
    case STAGE.shareDelivery:
      return {
        payload: 'shareDelivery',
        shareDelivery: { roundId: message.roundId, survivors: [...message.survivors], shares: message.shares.map((share) => ({ sender: share.sender, receiver: share.receiver, ciphertext: share.ciphertext })) },
      };
    case STAGE.consistencyRequest:
      return {
        payload: 'consistencyRequest',
        consistencyRequest: {
          roundId: message.roundId,
          survivors: [...message.survivors],
          closings: message.closings.map((closing) => ({ siteId: closing.siteId, survivorDigest: closing.survivorDigest, uploadHash: closing.uploadHash, signature: closing.signature })),
        },
      };
    case STAGE.unmaskRequest:
      return { payload: 'unmaskRequest', unmaskRequest: { roundId: message.roundId, signatures: message.signatures.map((entry) => ({ siteId: entry.siteId, signature: entry.signature })) } };
    case STAGE.commitRequest:
      return { payload: 'commitRequest', commitRequest: encodeCommitHashes(message) };
  }
}

/** A site -> coordinator stage message as its ParticipantMessage member (the masked input goes by upload). */
export function encodeClientStage(message: SessionClientMessage): ParticipantMessage {
  switch (message.stage) {
    case STAGE.advertiseKeys:
      return { payload: 'advertiseKeys', advertiseKeys: encodeAdvert(message) };
    case STAGE.nonceReveal:
      return { payload: 'nonceReveal', nonceReveal: { roundId: message.roundId, keyListSignature: message.keyListSignature, nonce: message.nonce } };
    case STAGE.shareKeys:
      return {
        payload: 'shareKeys',
        shareKeys: { roundId: message.roundId, selfMaskCommitment: message.selfMaskCommitment, shares: message.shares.map((share) => ({ receiver: share.receiver, ciphertext: share.ciphertext })), signature: message.signature },
      };
    case STAGE.consistencyCheck:
      return { payload: 'consistencySignature', consistencySignature: { roundId: message.roundId, signature: message.signature } };
    case STAGE.unmask:
      return {
        payload: 'unmaskResponse',
        unmaskResponse: { roundId: message.roundId, shares: message.shares.map((share) => ({ dealer: share.dealer, secret: WIRE_SECRET[share.secret], share: share.share })), signature: message.signature },
      };
    case STAGE.commit:
      return { payload: 'commitSignature', commitSignature: { ...encodeCommitHashes(message), signature: message.signature } };
  }
}

function encodeAdvert(advert: secagg.AdvertiseKeysMessage): AdvertiseKeys {
  return { roundId: advert.roundId, cipherPublicKey: advert.cipherPublicKey, maskPublicKey: advert.maskPublicKey, nonceCommitment: advert.nonceCommitment, signature: advert.signature };
}

function encodeCommitHashes(message: secagg.CommitHashes & { readonly roundId: Uint8Array }): CommitRequest {
  return { roundId: message.roundId, previousModelHash: message.previousModelHash, aggregateHash: message.aggregateHash, newModelHash: message.newModelHash, optimizerStateHash: message.optimizerStateHash };
}

// ---- decode (hostile input) ----

/** The stage message of a CoordinatorMessage whose `payload` is a stage member (keyList ... commitRequest). */
export function decodeServerStage(wire: CoordinatorMessage__Output): secagg.ServerMessage {
  const r = new WireReader('CoordinatorMessage');
  switch (wire.payload) {
    case 'keyList': {
      const body = r.message(wire.keyList, 'keyList');
      const b = r.at('keyList');
      return {
        stage: STAGE.keyList,
        roundId: b.bytes(body.roundId, 'roundId'),
        entries: b.list(body.entries, 'entries', (entry, e) => ({ siteId: e.text(entry.siteId, 'siteId'), advertDigest: e.bytes(entry.advertDigest, 'advertDigest'), nonceCommitment: e.bytes(entry.nonceCommitment, 'nonceCommitment') })),
      };
    }
    case 'graph': {
      const body = r.message(wire.graph, 'graph');
      const b = r.at('graph');
      return {
        stage: STAGE.graph,
        roundId: b.bytes(body.roundId, 'roundId'),
        nonces: b.list(body.nonces, 'nonces', (entry, e) => ({ siteId: e.text(entry.siteId, 'siteId'), nonce: e.bytes(entry.nonce, 'nonce') })),
        neighbours: b.list(body.neighbours, 'neighbours', (entry, e) => ({
          siteId: e.text(entry.siteId, 'siteId'),
          advert: decodeAdvert(e.message(entry.advert, 'advert'), e.at('advert')),
          keyListSignature: e.bytes(entry.keyListSignature, 'keyListSignature'),
          certificate: e.bytes(entry.certificate, 'certificate'),
        })),
        revokedSerials: b.texts(body.revokedSerials, 'revokedSerials'),
      };
    }
    case 'shareDelivery': {
      const body = r.message(wire.shareDelivery, 'shareDelivery');
      const b = r.at('shareDelivery');
      return {
        stage: STAGE.shareDelivery,
        roundId: b.bytes(body.roundId, 'roundId'),
        survivors: b.texts(body.survivors, 'survivors'),
        shares: b.list(body.shares, 'shares', (entry, e) => ({ sender: e.text(entry.sender, 'sender'), receiver: e.text(entry.receiver, 'receiver'), ciphertext: e.bytes(entry.ciphertext, 'ciphertext') })),
      };
    }
    case 'consistencyRequest': {
      const body = r.message(wire.consistencyRequest, 'consistencyRequest');
      const b = r.at('consistencyRequest');
      return {
        stage: STAGE.consistencyRequest,
        roundId: b.bytes(body.roundId, 'roundId'),
        survivors: b.texts(body.survivors, 'survivors'),
        closings: b.list(body.closings, 'closings', (entry, e) => ({
          siteId: e.text(entry.siteId, 'siteId'),
          survivorDigest: e.bytes(entry.survivorDigest, 'survivorDigest'),
          uploadHash: e.bytes(entry.uploadHash, 'uploadHash'),
          signature: e.bytes(entry.signature, 'signature'),
        })),
      };
    }
    case 'unmaskRequest': {
      const body = r.message(wire.unmaskRequest, 'unmaskRequest');
      const b = r.at('unmaskRequest');
      return {
        stage: STAGE.unmaskRequest,
        roundId: b.bytes(body.roundId, 'roundId'),
        signatures: b.list(body.signatures, 'signatures', (entry, e) => ({ siteId: e.text(entry.siteId, 'siteId'), signature: e.bytes(entry.signature, 'signature') })),
      };
    }
    case 'commitRequest':
      return { stage: STAGE.commitRequest, ...decodeCommitHashes(r.message(wire.commitRequest, 'commitRequest'), r.at('commitRequest')) };
    default:
      throw notAStage(r, wire.payload);
  }
}

/** The stage message of a ParticipantMessage whose `payload` is a stage member (advertiseKeys ... commitSignature). */
export function decodeClientStage(wire: ParticipantMessage__Output): SessionClientMessage {
  const r = new WireReader('ParticipantMessage');
  switch (wire.payload) {
    case 'advertiseKeys':
      return decodeAdvert(r.message(wire.advertiseKeys, 'advertiseKeys'), r.at('advertiseKeys'));
    case 'nonceReveal': {
      const body = r.message(wire.nonceReveal, 'nonceReveal');
      const b = r.at('nonceReveal');
      return { stage: STAGE.nonceReveal, roundId: b.bytes(body.roundId, 'roundId'), keyListSignature: b.bytes(body.keyListSignature, 'keyListSignature'), nonce: b.bytes(body.nonce, 'nonce') };
    }
    case 'shareKeys': {
      const body = r.message(wire.shareKeys, 'shareKeys');
      const b = r.at('shareKeys');
      return {
        stage: STAGE.shareKeys,
        roundId: b.bytes(body.roundId, 'roundId'),
        selfMaskCommitment: b.bytes(body.selfMaskCommitment, 'selfMaskCommitment'),
        shares: b.list(body.shares, 'shares', (entry, e) => ({ receiver: e.text(entry.receiver, 'receiver'), ciphertext: e.bytes(entry.ciphertext, 'ciphertext') })),
        signature: b.bytes(body.signature, 'signature'),
      };
    }
    case 'consistencySignature': {
      const body = r.message(wire.consistencySignature, 'consistencySignature');
      const b = r.at('consistencySignature');
      return { stage: STAGE.consistencyCheck, roundId: b.bytes(body.roundId, 'roundId'), signature: b.bytes(body.signature, 'signature') };
    }
    case 'unmaskResponse': {
      const body = r.message(wire.unmaskResponse, 'unmaskResponse');
      const b = r.at('unmaskResponse');
      return {
        stage: STAGE.unmask,
        roundId: b.bytes(body.roundId, 'roundId'),
        shares: b.list(body.shares, 'shares', (entry, e) => ({
          dealer: e.text(entry.dealer, 'dealer'),
          secret: decodeSecret(entry.secret, e),
          share: e.bytes(entry.share, 'share'),
        })),
        signature: b.bytes(body.signature, 'signature'),
      };
    }
    case 'commitSignature': {
      const body: CommitSignature__Output = r.message(wire.commitSignature, 'commitSignature');
      const b = r.at('commitSignature');
      return { stage: STAGE.commit, ...decodeCommitHashes(body, b), signature: b.bytes(body.signature, 'signature') };
    }
    default:
      throw notAStage(r, wire.payload);
  }
}

function decodeSecret(value: RevealedSecret__Output, r: WireReader): secagg.RevealedSecret {
  const secret = r.oneOf(value, 'secret', [WIRE_SECRET.self_mask, WIRE_SECRET.mask_key]);
  return secret === WIRE_SECRET.self_mask ? 'self_mask' : 'mask_key';
}

function decodeAdvert(body: AdvertiseKeys__Output, r: WireReader): secagg.AdvertiseKeysMessage {
  return {
    stage: STAGE.advertiseKeys,
    roundId: r.bytes(body.roundId, 'roundId'),
    cipherPublicKey: r.bytes(body.cipherPublicKey, 'cipherPublicKey'),
    maskPublicKey: r.bytes(body.maskPublicKey, 'maskPublicKey'),
    nonceCommitment: r.bytes(body.nonceCommitment, 'nonceCommitment'),
    signature: r.bytes(body.signature, 'signature'),
  };
}

function decodeCommitHashes(body: CommitRequest__Output, r: WireReader): secagg.CommitHashes & { readonly roundId: Uint8Array } {
  return {
    roundId: r.bytes(body.roundId, 'roundId'),
    previousModelHash: r.bytes(body.previousModelHash, 'previousModelHash'),
    aggregateHash: r.bytes(body.aggregateHash, 'aggregateHash'),
    newModelHash: r.bytes(body.newModelHash, 'newModelHash'),
    optimizerStateHash: r.bytes(body.optimizerStateHash, 'optimizerStateHash'),
  };
}

function notAStage(r: WireReader, payload: string | undefined): FedgateError {
  return new FedgateError('INVALID_ARGUMENT', `${r.where}.payload ${JSON.stringify(payload ?? null)} is not a round stage message`, { reason: MALFORMED_MESSAGE });
}
