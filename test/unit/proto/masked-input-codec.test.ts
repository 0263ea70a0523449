/**
 * A site's MaskedInput on the UploadMaskedInput call (proto/masked-input-codec.ts): the vector travels
 * little-endian whatever the host, the signed closing rides in the header, and the coordinator refuses an
 * upload of another stage or another length before the vector reaches the round. Also the RoundStage
 * mapping of proto/round-stage.ts that the header's stage comes from.
 */
import { describe, expect, it } from 'vitest';
import type { MaskedInputMessage } from '../../../crypto/secagg/messages.js';
import { CLIENT_STAGES } from '../../../crypto/secagg/stages.js';
import { uploadHash } from '../../../crypto/secagg/transcript.js';
import { FedgateError } from '../../../proto/errors.js';
import { decodeMaskedInputUpload, encodeMaskedInputUpload } from '../../../proto/masked-input-codec.js';
import { ROUND_STAGES, isRoundStage, roundStageOf } from '../../../proto/round-stage.js';
import type { ReceivedUpload } from '../../../proto/transfer.js';
import { ROUND_ID, bytes } from '../../support/wire-samples.js';

const vector = Uint32Array.of(1, 0x01020304, 0xffffffff, 0);
const masked: MaskedInputMessage = { stage: 'masked_input', roundId: ROUND_ID, maskedVector: vector, survivorDigest: bytes(32), uploadHash: uploadHash(vector), signature: bytes(256) };

/** What transfer.ts `receiveUpload` returns for an upload the site made with `encodeMaskedInputUpload`. */
function received(message: MaskedInputMessage, payload?: Buffer): ReceivedUpload {
  const upload = encodeMaskedInputUpload(message);
  return {
    header: {
      roundId: upload.target.roundId,
      stage: upload.target.stage,
      totalLength: upload.payload.byteLength,
      sha256: upload.options.payloadSha256,
      survivorDigest: upload.options.closing.survivorDigest,
      signature: upload.options.closing.signature,
    },
    payload: payload ?? Buffer.from(upload.payload),
  };
}

function refusal(decode: () => unknown): FedgateError {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return error as FedgateError;
  }
  throw new Error('expected a refusal');
}

describe('masked input uploads', () => {
  it('send the vector little-endian with the closing in the header, and come back as the same MaskedInput', () => {
    const upload = encodeMaskedInputUpload(masked);
    expect([...upload.payload]).toEqual([1, 0, 0, 0, 4, 3, 2, 1, 255, 255, 255, 255, 0, 0, 0, 0]);
    expect(upload.target).toEqual({ roundId: { counter: 7, nonce: Buffer.alloc(16, 9) }, stage: 'ROUND_STAGE_MASKED_INPUT' });
    expect(upload.options.payloadSha256.equals(Buffer.from(masked.uploadHash))).toBe(true);
    expect(decodeMaskedInputUpload(received(masked), vector.byteLength)).toEqual(masked);
  });

  it('read bytes at any offset of a shared buffer into an aligned vector of their own', () => {
    const shared = Buffer.alloc(vector.byteLength + 3);
    shared.set(encodeMaskedInputUpload(masked).payload, 3);
    const decoded = decodeMaskedInputUpload(received(masked, shared.subarray(3)), vector.byteLength);
    expect(decoded.maskedVector).toEqual(vector);
    expect(decoded.maskedVector.buffer).not.toBe(shared.buffer);
  });

  it('refuse an upload of another stage, of another length, or when no round takes uploads', () => {
    const wrongStage = refusal(() => decodeMaskedInputUpload({ ...received(masked), header: { ...received(masked).header, stage: 'ROUND_STAGE_COMMIT' } }, vector.byteLength));
    expect([wrongStage.code, wrongStage.reason]).toEqual(['INVALID_ARGUMENT', 'WRONG_STAGE']);
    expect(wrongStage.message).toContain('uploads carry masked inputs only (ROUND_STAGE_MASKED_INPUT); got stage ROUND_STAGE_COMMIT');
    const wrongLength = refusal(() => decodeMaskedInputUpload(received(masked), vector.byteLength + 4));
    expect([wrongLength.code, wrongLength.reason]).toEqual(['INVALID_ARGUMENT', 'WRONG_LENGTH']);
    expect(wrongLength.message).toContain(`a masked input of this round is ${vector.byteLength + 4} bytes; got ${vector.byteLength}`);
    expect(refusal(() => decodeMaskedInputUpload(received(masked), undefined)).reason).toBe('WRONG_LENGTH');
  });
});

describe('RoundStage (federation.proto) of the SecAgg+ stages', () => {
  it('maps every stage a site sends in to its step; nonce_reveal belongs to AdvertiseKeys', () => {
    expect(Object.fromEntries(CLIENT_STAGES.map((stage) => [stage, roundStageOf(stage)]))).toEqual({
      advertise_keys: 'ROUND_STAGE_ADVERTISE_KEYS',
      nonce_reveal: 'ROUND_STAGE_ADVERTISE_KEYS',
      share_keys: 'ROUND_STAGE_SHARE_KEYS',
      masked_input: 'ROUND_STAGE_MASKED_INPUT',
      consistency_check: 'ROUND_STAGE_CONSISTENCY_CHECK',
      unmask: 'ROUND_STAGE_UNMASK',
      commit: 'ROUND_STAGE_COMMIT',
    });
  });

  it('lists the enum from the generated types and accepts only named, specified stages', () => {
    expect(ROUND_STAGES[0]).toBe('ROUND_STAGE_UNSPECIFIED');
    expect(ROUND_STAGES).toHaveLength(8);
    expect(ROUND_STAGES.filter(isRoundStage)).toEqual(ROUND_STAGES.slice(1));
    for (const value of ['ROUND_STAGE_UNSPECIFIED', 4, 'ROUND_STAGE_BOGUS', undefined, null]) expect(isRoundStage(value)).toBe(false);
  });
});
