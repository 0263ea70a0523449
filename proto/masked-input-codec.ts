/**
 * A site's MaskedInput (DESIGN.md step 4) on the UploadMaskedInput call of federation.proto: the masked
 * vector as its little-endian uint32 bytes (crypto/secagg/vector-bytes.ts, the one byte order of the
 * protocol, whatever the hosts' own), the signed closing in the UploadHeader. The daemon encodes with
 * this, the coordinator decodes with it; transfer.ts moves the bytes.
 */
import type { MaskedInputMessage } from '../crypto/secagg/messages.js';
import { STAGE } from '../crypto/secagg/stages.js';
import { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from '../crypto/secagg/vector-bytes.js';
import { fedgateError } from './errors.js';
import { roundIdFromWire, roundIdToWire } from './round-id.js';
import { roundStageOf } from './round-stage.js';
import type { ReceivedUpload, UploadOptions, UploadTarget } from './transfer.js';
import { WireReader } from './wire-reader.js';

/** The arguments of transfer.ts `uploadMaskedInput` for one masked input. */
export interface MaskedInputUpload {
  readonly target: UploadTarget;
  /** The vector's bytes, little-endian (on little-endian hosts a view of the vector: no copy). */
  readonly payload: Uint8Array;
  readonly options: UploadOptions & Required<Pick<UploadOptions, 'payloadSha256' | 'closing'>>;
}

export function encodeMaskedInputUpload(message: MaskedInputMessage): MaskedInputUpload {
  return {
    target: { roundId: roundIdToWire(message.roundId), stage: roundStageOf(STAGE.maskedInput) },
    payload: vectorToLittleEndianBytes(message.maskedVector),
    options: {
      payloadSha256: Buffer.from(message.uploadHash),
      closing: { survivorDigest: Buffer.from(message.survivorDigest), signature: Buffer.from(message.signature) },
    },
  };
}

/**
 * The MaskedInput of a received upload (length and SHA-256 already checked by transfer.ts). `expectedBytes`
 * is the size of one masked input of the open round, undefined when no round takes uploads.
 */
export function decodeMaskedInputUpload(upload: ReceivedUpload, expectedBytes: number | undefined): MaskedInputMessage {
  const { header, payload } = upload;
  const expectedStage = roundStageOf(STAGE.maskedInput);
  if (header.stage !== expectedStage) throw fedgateError('INVALID_ARGUMENT', 'WRONG_STAGE', `uploads carry masked inputs only (${expectedStage}); got stage ${header.stage}`);
  if (expectedBytes === undefined || payload.length !== expectedBytes) {
    throw fedgateError('INVALID_ARGUMENT', 'WRONG_LENGTH', `a masked input of this round is ${String(expectedBytes)} bytes; got ${payload.length}`);
  }
  const r = new WireReader('UploadHeader');
  return {
    stage: STAGE.maskedInput,
    roundId: roundIdFromWire(header.roundId),
    maskedVector: vectorFromLittleEndianBytes(payload),
    survivorDigest: r.bytes(header.survivorDigest, 'survivorDigest'),
    uploadHash: r.bytes(header.sha256, 'sha256'),
    signature: r.bytes(header.signature, 'signature'),
  };
}
